import { APIRequestContext, Browser, Page, Request } from "@playwright/test";
import { expect, test } from "./fixtures";
import { openLab } from "./helpers";

// Beyond the article: tokens bound to a key this browser holds (DPoP, RFC 9449). The key is a
// non-extractable WebCrypto key kept in IndexedDB; every request carries a fresh proof by it.

test.beforeEach(async ({ request }) => {
  await request.post("/api/demo/clock", { data: { reset: true } });
});

/** The first request the page sends to `path` from now on. */
function nextRequestTo(page: Page, path: string): Promise<Request> {
  return page.waitForRequest((request) => new URL(request.url()).pathname === path);
}

/** Another browser: none of this one's cookies, storage or keys, only what it is handed. */
async function otherBrowser(browser: Browser, page: Page): Promise<APIRequestContext> {
  const context = await browser.newContext({ baseURL: new URL(page.url()).origin });
  return context.request;
}

async function reasonOf(response: { json(): Promise<unknown> }): Promise<string> {
  return ((await response.json()) as { reason: string }).reason;
}

test("a bound device: a key no script can export, kept across reloads; copied cookie, headers and proofs are worthless", async ({ page, browser }) => {
  await openLab(page);
  const panel = page.getByTestId("device-panel");
  const form = panel.getByTestId("device-login");
  await form.getByLabel("bound to this browser's key (DPoP)").check();
  await expect(form.getByTestId("bound-explainer")).toContainText("no token at all");
  await form.getByLabel("Password").fill("wonderland-demo");
  await form.getByRole("button", { name: "Log in on this device" }).click();
  await expect(panel.getByTestId("device-mode")).toHaveText("bound to this browser's key");
  await expect(panel.getByTestId("device-token")).toHaveText("none");
  const jkt = await panel.getByTestId("device-key-jkt").innerText();
  expect(jkt).toMatch(/^[A-Za-z0-9_-]{43}$/);
  // The server keeps no secret for it, only the public key's thumbprint.
  await expect(page.getByTestId("inspector-devices")).toContainText(`no secret; key thumbprint ${jkt.slice(0, 8)}`);

  const sent = nextRequestTo(page, "/api/device/me");
  await panel.getByRole("button", { name: "Call a protected API" }).click();
  await expect(panel.getByTestId("device-call-result")).toContainText("200 OK");
  const call = await sent;
  const proof = call.headers()["dpop"];
  expect(proof.split(".")).toHaveLength(3);
  expect(call.headers()["x-device-token"]).toBeUndefined();
  const timeline = page.getByTestId("timeline");
  await expect(timeline.locator("li.entry", { hasText: "/api/device/me" }).first()).toContainText("dpop:");

  // The private key is in IndexedDB as a CryptoKey this page can sign with but never read.
  const key = await page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const open = indexedDB.open("tokenlab");
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    const pair = await new Promise<CryptoKeyPair>((resolve, reject) => {
      const get = db.transaction("keys").objectStore("keys").get("dpop");
      get.onsuccess = () => resolve(get.result as CryptoKeyPair);
      get.onerror = () => reject(get.error);
    });
    db.close();
    let exported = "exported";
    try {
      await crypto.subtle.exportKey("jwk", pair.privateKey);
    } catch (err) {
      exported = `refused: ${(err as Error).name}`;
    }
    return { extractable: pair.privateKey.extractable, algorithm: pair.privateKey.algorithm, exported };
  });
  expect(key.extractable).toBe(false);
  expect(key.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-256" });
  expect(key.exported).toBe("refused: InvalidAccessError");

  // (a) What a thief copies: the cookie and the device id. Without the key there is nothing to send.
  const cookie = (await page.context().cookies()).find((c) => c.name === "tl_device");
  expect(cookie).toBeDefined();
  const deviceId = await panel.getByTestId("device-id").innerText();
  const thief = await otherBrowser(browser, page);
  const copied = { cookie: `tl_device=${cookie!.value}`, "x-device-id": deviceId };
  const withoutProof = await thief.get("/api/device/me", { headers: copied });
  expect(withoutProof.status()).toBe(401);
  expect(await reasonOf(withoutProof)).toBe("device_credentials_missing");
  // (b) ...and a proof it captured on the wire: spent already.
  const replayed = await thief.get("/api/device/me", { headers: { ...copied, dpop: proof } });
  expect(replayed.status()).toBe(401);
  expect(await reasonOf(replayed)).toBe("dpop_proof_replayed");

  // The key survives a reload: the page signs in again with it, no password.
  await page.reload();
  await expect(page.locator("main.lab[data-hydrated='true']")).toBeVisible();
  await expect(panel.getByTestId("device-mode")).toHaveText("bound to this browser's key");
  await expect(panel.getByTestId("device-key-jkt")).toHaveText(jkt);
  await panel.getByRole("button", { name: "Call a protected API" }).click();
  await expect(panel.getByTestId("device-call-result")).toContainText("200 OK");

  // Past the session's idle timeout: a fresh proof re-attaches, as a token would in the article.
  await page.getByRole("button", { name: "+31 min" }).click();
  await expect(page.getByTestId("clock-offset")).toHaveText("31 min ahead");
  await panel.getByRole("button", { name: "Call a protected API" }).click();
  await expect(panel.getByTestId("device-renewed")).toContainText("re-attached from the database");
});

test("access + refresh tokens bound to this browser's key: calls and a silent refresh work, the copied token does not", async ({ page, browser }) => {
  await openLab(page);
  const panel = page.getByTestId("bearer-panel");
  const form = panel.getByTestId("bearer-login");
  await form.getByTestId("bearer-bind").check();
  await form.getByLabel("Password").fill("wonderland-demo");
  await form.getByRole("button", { name: "Log in (password grant)" }).click();
  await expect(panel.getByTestId("bearer-access")).toHaveText("in memory");
  await expect(panel.getByTestId("bearer-bound")).toContainText("this browser's key");
  await expect(panel.getByTestId("bearer-claims")).toContainText('"jkt"');

  const sent = nextRequestTo(page, "/api/jwt/me");
  await panel.getByRole("button", { name: "Call a protected API" }).click();
  await expect(panel.getByTestId("bearer-call-result")).toContainText("200 OK — holder of the key");
  const authorization = (await sent).headers()["authorization"];
  expect(authorization).toMatch(/^DPoP /);
  const token = authorization.slice("DPoP ".length);

  // The access token copied off the wire, used elsewhere: as Bearer, or as DPoP without the key.
  const thief = await otherBrowser(browser, page);
  const asBearer = await thief.get("/api/jwt/me", { headers: { authorization: `Bearer ${token}` } });
  expect(asBearer.status()).toBe(401);
  expect(await reasonOf(asBearer)).toBe("token_bound");
  expect(asBearer.headers()["www-authenticate"]).toContain("DPoP");
  const asDpop = await thief.get("/api/jwt/me", { headers: { authorization: `DPoP ${token}` } });
  expect(await reasonOf(asDpop)).toBe("dpop_proof_invalid");

  // A month on the demo clock: the access token expires, the bound refresh token is exchanged
  // with a proof by the same key, and the call goes through.
  await page.getByRole("button", { name: "+31 days" }).click();
  await expect(page.getByTestId("clock-offset")).toHaveText("31 d ahead");
  await panel.getByRole("button", { name: "Call a protected API" }).click();
  await expect(panel.getByTestId("bearer-call-result")).toContainText("after a silent refresh");
  await expect(panel.getByTestId("bearer-family").locator("li.rotated")).toHaveCount(1);

  // After a reload the access token is gone from memory; the key and the refresh cookie remain.
  await page.reload();
  await expect(page.locator("main.lab[data-hydrated='true']")).toBeVisible();
  await expect(panel.getByTestId("bearer-bound")).toContainText("this browser's key");
  await panel.getByRole("button", { name: "Call a protected API" }).click();
  await expect(panel.getByTestId("bearer-call-result")).toContainText("200 OK — holder of the key");
});

test("the same theft on every rung: each card of the ladder ends as the lab says", async ({ page, request }) => {
  test.setTimeout(90_000);
  expect((await request.post("/api/demo/reset")).status()).toBe(200);
  const failures = await openLab(page, "/attacks");
  const ladder = page.getByTestId("ladder");
  const run = async (key: string) => {
    const card = ladder.getByTestId(`attack-ladder-${key}`);
    await card.getByRole("button", { name: "Run the attack" }).click();
    await expect(card).toHaveAttribute("data-state", "passed", { timeout: 20_000 });
    return card.getByTestId("attack-result");
  };

  const copied = await run("copied-headers");
  await expect(copied).toContainText("as written: 200; hardened: 200");
  await expect(copied).toContainText("bound device: 401 device_credentials_missing");
  await expect(copied).toContainText("bound tokens: 401 token_bound");

  const replayed = await run("replayed-proof");
  await expect(replayed).toContainText("bound device: 401 dpop_proof_replayed");
  await expect(replayed).toContainText("bound tokens: 401 dpop_proof_replayed");

  const premade = await run("premade-proofs");
  await expect(premade).toContainText("as written: 200; hardened: 200");
  await expect(premade).toContainText("bound device: 401 use_dpop_nonce");
  await expect(premade).toContainText("bound tokens: 401 use_dpop_nonce");

  const live = await run("live-key");
  await expect(live).toContainText("the script got in everywhere");
  await expect(live).toContainText("bound device: 200; bound tokens: 200");
  await expect(ladder.getByTestId("attack-ladder-live-key")).toContainText("not a page that is itself compromised");

  const skew = await run("clock-skew");
  await expect(skew).toContainText("bound device, 120 s late: 401 dpop_proof_invalid");
  await expect(skew).toContainText("bound tokens, 30 s ahead: 401 dpop_proof_invalid");
  await expect(skew).toContainText("bound device, 30 s late: 200");
  await expect(ladder.locator(".reason-rule[data-reason='dpop_proof_replayed']")).toContainText("RFC 9449");

  // The attacker's requests are marked in the timeline.
  await expect(page.getByTestId("timeline").locator("li.entry", { hasText: "attacker" }).first()).toBeVisible();
  expect(failures).toEqual([]);
  expect((await request.post("/api/demo/reset")).status()).toBe(200);
});
