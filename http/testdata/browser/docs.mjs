// Drives todo-api's /docs page in headless Chromium the way a person would:
// Authorize with a built-in account through the OAuth2 password flow, then
// "Try it out" on POST /api/tasks and GET /api/tasks. Prints one JSON line
// with what the page showed; exits non-zero when anything is off.
//
//   BASE=http://127.0.0.1:8000 EMAIL=… PASSWORD=… CHROMIUM=/usr/bin/chromium node docs.mjs
import { chromium } from "playwright-core";

const { BASE, EMAIL, PASSWORD } = process.env;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const result = { requests: [], offsite: [] };
try {
  const page = await browser.newPage();
  page.on("request", (req) => {
    const url = new URL(req.url());
    if (url.origin !== new URL(BASE).origin && url.protocol !== "data:") result.offsite.push(req.url());
    else result.requests.push(`${req.method()} ${url.pathname}`);
  });
  await page.goto(`${BASE}/docs`, { waitUntil: "networkidle" });
  await page.locator("button.authorize").first().click();

  const modal = page.locator(".modal-ux");
  // The modal has one section per scheme: bearerAuth, then passwordLogin.
  const password = modal.locator(".auth-container", { has: page.locator("#oauth_username") });
  await password.locator("#oauth_username").fill(EMAIL);
  await password.locator("#oauth_password").fill(PASSWORD);
  const login = page.waitForResponse((r) => new URL(r.url()).pathname === "/api/auth/login");
  await password.locator("button.modal-btn.authorize").click();
  const loginResponse = await login;
  result.loginStatus = loginResponse.status();
  // Once authorized, the section says so and shows the account.
  await modal.getByText("Authorized", { exact: true }).waitFor({ timeout: 5000 });
  result.authorized = true;
  await modal.locator("button.close-modal").click();

  async function tryOut(opId, body) {
    const op = page.locator(`#operations-tasks-${opId}`);
    await op.locator(".opblock-summary").first().click();
    // The section is still opening when the button appears: wait until
    // the click has taken (the button turns into Cancel).
    const tryOutButton = op.locator("button.try-out__btn");
    for (let i = 0; i < 20 && !(await op.locator("button.try-out__btn.cancel").count()); i++) {
      await tryOutButton.click();
      await page.waitForTimeout(100);
    }
    if (body !== undefined) await op.locator(".opblock-section-request-body textarea").first().fill(body);
    const response = page.waitForResponse((r) => new URL(r.url()).pathname === "/api/tasks");
    await op.locator("button.execute").click();
    const r = await response;
    return { status: r.status(), authorization: (await r.request().allHeaders())["authorization"]?.split(" ")[0], body: await r.json() };
  }
  result.create = await tryOut("createTask", JSON.stringify({ title: "made in the docs page" }));
  result.list = await tryOut("listTasks");
} catch (err) {
  result.error = String(err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
const ok = !result.error && result.loginStatus === 200 && result.authorized && result.offsite.length === 0 &&
  result.create?.status === 201 && result.list?.status === 200 && result.list.body.count === 1;
process.exit(ok ? 0 : 1);
