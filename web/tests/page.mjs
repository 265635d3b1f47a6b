// The web page in a real browser: Debian's Chromium, headless, driven by playwright-core
// (which never downloads a browser here), in WebGPU mode (SwiftShader) and in WebGL2 mode
// (--disable-gpu), and with neither (the page must say so).
//
//   node web/tests/page.mjs [dist] [shots]
//
// Serves `dist` (default: dist) on a loopback port and checks, in each mode: the page
// starts without page errors or panics; the status line names the expected renderer and
// engine and shows a rising step count with a falling loss; the canvas is not blank; the
// address gets the settings; a link with settings applies them; a garbage link shows the
// notice and training goes on; the embed flag; a CSV dropped on the canvas is learned
// (and a bad one named in a notice); WebGPU mode also trains on the GPU engine
// (#backend=gpu); WebGL2 mode checks that the page reloads with the server gone (the
// service worker's copy). Screenshots go to `shots` (default: target/web-shots).
// Prints one JSON line of measurements; exits 1 on the first failed check.

import { chromium } from "playwright-core";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import zlib from "node:zlib";

const DIST = path.resolve(process.argv[2] || "dist");
const SHOTS = path.resolve(process.argv[3] || "target/web-shots");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const MODES = (process.env.MODES || "webgpu,webgl2,nographics").split(",");

const BASE_FLAGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];
const FLAGS = {
  webgpu: [
    ...BASE_FLAGS,
    "--enable-unsafe-webgpu",
    "--enable-features=Vulkan",
    "--use-vulkan=swiftshader",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
  ],
  webgl2: [...BASE_FLAGS, "--disable-gpu"],
  // Neither WebGPU nor WebGL: the page must say so instead of staying blank.
  nographics: [...BASE_FLAGS, "--disable-gpu", "--disable-3d-apis", "--disable-webgl", "--disable-webgpu"],
};
const RENDERER = { webgpu: "WebGPU", webgl2: "WebGL2" };

const results = { modes: {} };
let failures = 0;

function check(ok, what, detail = "") {
  const line = `${ok ? "ok  " : "FAIL"} ${what}${detail ? `: ${detail}` : ""}`;
  console.log(line);
  if (!ok) {
    failures += 1;
  }
  return ok;
}

// --- a static server for dist/ (the right MIME type for wasm matters) -------------

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".wasm": "application/wasm",
  ".css": "text/css",
  ".png": "image/png",
  ".json": "application/json",
};

function serve(root) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    let file = path.join(root, decodeURIComponent(url.pathname));
    if (!file.startsWith(root)) {
      res.writeHead(403).end();
      return;
    }
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) {
      file = path.join(file, "index.html");
    }
    fs.readFile(file, (err, body) => {
      if (err) {
        res.writeHead(404).end("not found");
        return;
      }
      res.writeHead(200, {
        "content-type": TYPES[path.extname(file)] || "application/octet-stream",
        "cache-control": "no-cache",
      });
      res.end(body);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

// --- the page and its console -------------------------------------------------------

/** Opens the page in a fresh context; collects status lines, notices and errors. */
async function open(browser, url, { context } = {}) {
  const ctx =
    context ||
    (await browser.newContext({
      viewport: { width: 1280, height: 800 },
      acceptDownloads: true,
      permissions: ["clipboard-read", "clipboard-write"],
    }));
  const page = await ctx.newPage();
  const log = { status: [], notices: [], errors: [], started: null, firstFrame: null, t0: Date.now() };
  page.on("console", (msg) => {
    const text = msg.text();
    if (text.startsWith("flow-playground status ")) {
      // The first status line comes from the first frame's update.
      log.firstFrame ??= Date.now() - log.t0;
      log.status.push(JSON.parse(text.slice("flow-playground status ".length)));
    } else if (text.startsWith("flow-playground notice: ")) {
      log.notices.push(text.slice("flow-playground notice: ".length));
    } else if (text === "flow-playground started") {
      log.started = Date.now() - log.t0;
    }
    if (msg.type() === "error" || /panicked/.test(text)) {
      log.errors.push(text);
    }
  });
  page.on("pageerror", (e) => log.errors.push(`page error: ${e.message}`));
  await page.goto(url);
  return { ctx, page, log };
}

async function waitFor(what, cond, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await cond();
    if (v) {
      return v;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

const last = (log) => log.status[log.status.length - 1];

/** Waits until training has gone `steps` past the first status line that shows a loss. */
async function training(log, steps, timeoutMs) {
  const first = await waitFor("a status line with a loss", () => log.status.find((s) => s.loss != null), timeoutMs);
  await waitFor(`${steps} more steps`, () => last(log).step >= first.step + steps, timeoutMs);
  return { first, now: last(log) };
}

/** Standard deviation of the screenshot's pixels (0 to 1), computed by the browser. */
async function spread(browser, png) {
  const page = await browser.newPage();
  const sd = await page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width;
    c.height = img.height;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let s = 0;
    let s2 = 0;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      const v = (d[i] + d[i + 1] + d[i + 2]) / (3 * 255);
      s += v;
      s2 += v * v;
      n += 1;
    }
    const m = s / n;
    return Math.sqrt(Math.max(0, s2 / n - m * m));
  }, png.toString("base64"));
  await page.close();
  return sd;
}

async function shot(browser, page, name) {
  const file = path.join(SHOTS, `${name}.png`);
  const png = await page.screenshot({ path: file });
  return { file, spread: await spread(browser, png) };
}

function noErrors(mode, what, log) {
  check(log.errors.length === 0, `${mode}: ${what} without page errors or panics`, log.errors.slice(0, 3).join(" | "));
}

// --- the checks ---------------------------------------------------------------------

async function runMode(mode, base) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS[mode] });
  const out = {};
  results.modes[mode] = out;
  try {
    if (mode === "nographics") {
      const { ctx, page, log } = await open(browser, `${base}/`);
      const text = await waitFor(
        "the failure text",
        () => page.evaluate(() => {
          const el = document.getElementById("loading_text");
          return el && /could not start/.test(el.textContent) ? el.textContent : null;
        }),
        60_000,
      );
      check(/WebGL2 and WebGPU/.test(text), `${mode}: without WebGL and WebGPU the page says why`, text.trim());
      check(log.started == null, `${mode}: the app did not claim to start`);
      await shot(browser, page, `${mode}-failure`);
      await ctx.close();
      return;
    }
    // 1. The default page: renderer, engine, training, a drawn canvas, the address.
    {
      const { ctx, page, log } = await open(browser, `${base}/`);
      await waitFor("the app's start", () => log.started != null, 90_000);
      out.started_ms = log.started;
      await waitFor("the first frame", () => log.firstFrame != null, 30_000);
      out.first_frame_ms = log.firstFrame;
      const { first, now } = await training(log, 200, 120_000);
      const s = now;
      check(s.renderer === RENDERER[mode], `${mode}: renderer`, `${s.renderer} (expected ${RENDERER[mode]})`);
      check(s.backend === "cpu", `${mode}: engine picked by default`, `${s.backend} on ${s.adapter}: ${s.reason}`);
      check(now.step > first.step, `${mode}: the step count rises`, `${first.step} -> ${now.step}`);
      check(now.loss < first.loss, `${mode}: the loss falls`, `${first.loss.toFixed(3)} -> ${now.loss.toFixed(3)}`);
      out.cpu_steps_per_second = s.steps_per_second;
      out.fps = s.fps;
      const hash = await page.evaluate(() => location.hash);
      check(/data=moons/.test(hash) && /width=128/.test(hash), `${mode}: the address holds the settings`, hash.slice(0, 80));
      await page.waitForTimeout(1500);
      const sh = await shot(browser, page, `${mode}-default`);
      check(sh.spread > 0.02, `${mode}: the canvas is not blank`, `pixel spread ${sh.spread.toFixed(3)}`);

      // The Share menu (egui draws it: clicks at its places in a 1280 x 800 page).
      const share = async (x, y) => {
        await page.mouse.click(420, 12);
        await page.waitForTimeout(1200);
        await page.mouse.click(x, y);
      };
      await share(433, 40); // Copy link
      const link = await waitFor(
        "the copied link",
        () => page.evaluate(() => navigator.clipboard.readText().catch(() => "")),
        20_000,
      );
      check(link.startsWith(`${base}/#data=moons&`), `${mode}: Share > Copy link copies the page's link`, link.slice(0, 70));
      const [download] = await Promise.all([page.waitForEvent("download", { timeout: 60_000 }), share(466, 95)]);
      const csv = fs.readFileSync(await download.path(), "utf8").trim().split("\n");
      const rows = csv.slice(1).map((l) => l.split(",").map(Number));
      check(
        /^flow-playground-moons-samples-step\d+\.csv$/.test(download.suggestedFilename()) &&
          csv[0] === "x,y" &&
          rows.length >= 2000 &&
          rows.every((r) => r.length === 2 && r.every(Number.isFinite)),
        `${mode}: Share > Export samples downloads a CSV`,
        `${download.suggestedFilename()}: ${rows.length} rows`,
      );
      noErrors(mode, "the default page", log);

      // 2. Offline: the service worker's copy serves the page once the server is gone.
      if (mode === "webgl2") {
        await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
        out.offline_checked = true;
        await base.stop();
        log.started = null;
        log.t0 = Date.now();
        await page.reload();
        await waitFor("the app's start without a server", () => log.started != null, 90_000);
        const before = last(log).step;
        await waitFor("training offline", () => last(log).step > before + 20, 60_000);
        check(true, `${mode}: the page reloads and trains with the server gone`);
        await base.restart();
      }
      await ctx.close();
    }

    // 3. A link with settings applies them.
    {
      const { ctx, page, log } = await open(browser, `${base}/#data=8gaussians&loss=dsm-eps&width=64&t=0.5`);
      await waitFor("the app's start", () => log.started != null, 90_000);
      const { now } = await training(log, 50, 90_000);
      check(
        now.dataset === "8gaussians" && /loss=dsm-eps/.test(now.settings) && /width=64/.test(now.settings) && now.t === 0.5,
        `${mode}: a link's settings apply`,
        `${now.dataset} ${now.settings.slice(0, 90)}`,
      );
      check(log.notices.length === 0, `${mode}: a good link gives no notice`, log.notices.join(" | "));
      await shot(browser, page, `${mode}-link`);
      noErrors(mode, "a link", log);
      await ctx.close();
    }

    // 4. A garbage link: a notice naming what was ignored; the page trains on.
    {
      const { ctx, page, log } = await open(browser, `${base}/#width=abc&foo=bar&data=nope&%%%&t=0.5`);
      await waitFor("the app's start", () => log.started != null, 90_000);
      const { first, now } = await training(log, 50, 90_000);
      const notice = log.notices.join(" | ");
      check(
        /width=abc/.test(notice) && /'foo'/.test(notice) && /data=nope/.test(notice),
        `${mode}: a garbage link's notice names what was ignored`,
        notice.slice(0, 120),
      );
      check(now.notice && /link: ignored/.test(now.notice), `${mode}: the notice is on screen (status line)`);
      check(now.step > first.step && now.dataset === "moons" && now.t === 0.5, `${mode}: defaults for the rest, training goes on`);
      await shot(browser, page, `${mode}-garbage-link`);
      noErrors(mode, "a garbage link", log);
      await ctx.close();
    }

    // 5. The embed flag, and a CSV dropped on the canvas (then a bad one).
    {
      const { ctx, page, log } = await open(browser, `${base}/#embed=1&batch=256`);
      await waitFor("the app's start", () => log.started != null, 90_000);
      await waitFor("a status line", () => log.status.length > 0, 30_000);
      check(last(log).embed === true, `${mode}: the embed flag hides the controls`);
      await page.waitForTimeout(1000);
      await shot(browser, page, `${mode}-embed`);
      const csv = ["x,y"];
      for (let i = 0; i < 300; i += 1) {
        const a = (2 * Math.PI * i) / 300;
        csv.push(`${(10 + 4 * Math.cos(a)).toFixed(4)},${(20 + 4 * Math.sin(3 * a)).toFixed(4)}`);
      }
      const drop = (name, text) =>
        page.evaluate(
          ([name, text]) => {
            const dt = new DataTransfer();
            dt.items.add(new File([text], name, { type: "text/csv" }));
            const canvas = document.getElementById("the_canvas_id");
            for (const type of ["dragenter", "dragover", "drop"]) {
              canvas.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
            }
          },
          [name, text],
        );
      await drop("lissajous.csv", csv.join("\n"));
      const got = await waitFor("the dropped points", () => log.status.find((s) => s.dataset === "drawn"), 30_000);
      check(got.points === 300, `${mode}: a dropped CSV is learned`, `${got.points} points`);
      const n = log.notices.length;
      await drop("broken.csv", "x,y\n1,2\n3,oops\n");
      await waitFor("the bad file's notice", () => log.notices.length > n, 30_000);
      const bad = log.notices[log.notices.length - 1];
      check(/broken\.csv/.test(bad) && /line 3/.test(bad), `${mode}: a bad CSV is named with its line`, bad);
      const before = last(log).step;
      await waitFor("training after a bad file", () => last(log).step > before + 10 && last(log).points === 300, 60_000);
      check(true, `${mode}: a bad file changes nothing`);
      noErrors(mode, "dropped files", log);
      await ctx.close();
    }

    // 6. WebGPU: training and particles on the GPU engine.
    if (mode === "webgpu") {
      const { ctx, page, log } = await open(browser, `${base}/#backend=gpu&batch=256`);
      await waitFor("the app's start", () => log.started != null, 90_000);
      const { first, now } = await training(log, 100, 180_000);
      check(now.backend === "gpu", `${mode}: the GPU engine trains in the page`, `${now.backend} on ${now.adapter}`);
      check(now.loss < first.loss && now.step > first.step, `${mode}: GPU training: step rises, loss falls`,
        `${first.step} -> ${now.step}, ${first.loss.toFixed(3)} -> ${now.loss.toFixed(3)}`);
      out.gpu_steps_per_second = now.steps_per_second;
      out.gpu_adapter = now.adapter;
      await page.waitForTimeout(1500);
      const sh = await shot(browser, page, `${mode}-gpu-engine`);
      check(sh.spread > 0.02, `${mode}: the GPU engine's canvas is not blank`, `pixel spread ${sh.spread.toFixed(3)}`);
      noErrors(mode, "the GPU engine", log);
      await ctx.close();
    }
  } catch (e) {
    check(false, `${mode}: ${e.message}`);
  } finally {
    await browser.close();
  }
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const wasm = fs.readdirSync(DIST).find((f) => f.endsWith(".wasm"));
  if (!check(wasm != null, "dist/ holds the wasm", DIST)) {
    process.exit(1);
  }
  const bytes = fs.readFileSync(path.join(DIST, wasm));
  results.wasm_bytes = bytes.length;
  results.wasm_gzip_bytes = zlib.gzipSync(bytes, { level: 9 }).length;

  let server = await serve(DIST);
  const port = server.address().port;
  const base = `http://127.0.0.1:${port}`;
  const handle = {
    toString: () => base,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
    restart: async () => {
      server = http.createServer(server.listeners("request")[0]);
      await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
    },
  };
  for (const mode of MODES) {
    await runMode(mode, handle);
  }
  await handle.stop().catch(() => {});
  console.log(`flow-playground web ${JSON.stringify(results)}`);
  if (failures > 0) {
    console.log(`${failures} check(s) failed; screenshots in ${SHOTS}`);
    process.exit(1);
  }
  console.log(`all checks passed; screenshots in ${SHOTS}`);
}

main();
