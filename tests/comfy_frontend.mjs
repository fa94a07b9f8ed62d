#!/usr/bin/env node
// Opens workflows in ComfyUI's real web frontend (headless Chromium through playwright-core) and reports what a user
// would see: the view (zoom, whether node text is drawn), every node and group on the canvas and whether its title
// is hidden under the frontend's own panels, and the frontend's missing-node / missing-media / missing-model state.
//
//   node tests/comfy_frontend.mjs JOBS.json > REPORT.json
//
// JOBS.json: {"url": "http://127.0.0.1:PORT/", "width": 1920, "height": 1080, "jobs": [
//     {"name": "...", "workflow": "/path/ui.json" | "template": ["pack folder", "template name"],
//      "screenshot": "/path/out.png", "clip": [x, y, w, h]?},
//     {"name": "...", "templates_dialog": "pack folder", "screenshot": "..."}]}
// A workflow file is loaded the way a dropped file is; a template the way the Templates dialog opens one (fetched
// from /api/workflow_templates/<pack>/<name>.json, opened as a template, which frontend 1.49 fits to the window).
// playwright-core comes from PLAYWRIGHT_CORE_DIR (npm install --prefix DIR playwright-core@1), the browser from
// CHROMIUM (default /usr/bin/chromium).
import { createRequire } from "module";
import fs from "fs";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_CORE_DIR || "playwright-core");
const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const reports = [];
try {
  const page = await browser.newPage({ viewport: { width: config.width || 1920, height: config.height || 1080 } });
  const errors = [];
  let current = "start-up";  // which job a page error happened in
  page.on("pageerror", (e) => errors.push({ job: current,
    error: `${e.message} ${(e.stack || "").split("\n").slice(0, 4).join(" | ")}` }));
  await page.goto(config.url, { waitUntil: "domcontentloaded", timeout: 90000 });
  await page.waitForFunction(() => window.app && window.app.graph && window.LiteGraph &&
      Object.keys(window.LiteGraph.registered_node_types || {}).length > 50, null, { timeout: 90000 });
  await page.waitForTimeout(2000);
  await page.keyboard.press("Escape");  // the first-run Templates dialog
  await page.waitForTimeout(500);
  for (const job of config.jobs) {
    current = job.name;
    if (job.templates_dialog) {
      reports.push(await templatesDialog(page, job));
      continue;
    }
    await closeDialogs(page);
    let workflow;
    let options = {};
    if (job.template) {
      const [pack, name] = job.template;
      workflow = await page.evaluate(async ([pack, name]) => {
        const r = await fetch(`api/workflow_templates/${encodeURIComponent(pack)}/${encodeURIComponent(name)}.json`);
        return r.ok ? r.json() : null;
      }, [pack, name]);
      if (!workflow) { reports.push({ name: job.name, error: "template not served" }); continue; }
      options = { openSource: "template" };
    } else {
      workflow = JSON.parse(fs.readFileSync(job.workflow, "utf8"));
    }
    const missingTypes = await page.evaluate(async ([wf, options, title]) => {
      const known = window.LiteGraph.registered_node_types;
      const missing = (wf.nodes || []).map((n) => n.type).filter((t) => !(t in known));
      await window.app.loadGraphData(wf, true, true, title, options);
      return missing;
    }, [workflow, options, job.name]);
    await page.waitForTimeout(job.wait_ms || 3000);  // the frontend checks models and media after loading
    const report = await page.evaluate(inspect);
    report.name = job.name;
    report.missing_node_types = missingTypes;
    if (job.screenshot) {
      await page.screenshot({ path: job.screenshot, ...(job.clip ? { clip: { x: job.clip[0], y: job.clip[1],
          width: job.clip[2], height: job.clip[3] } } : {}) });
    }
    if (report.dialogs.length) {  // what the canvas shows once the user has closed the dialog (missing models...)
      await closeDialogs(page);
      const after = await page.evaluate(inspect);
      report.nodes = after.nodes;
      report.groups = after.groups;
    }
    reports.push(report);
  }
  if (errors.length) reports.push({ name: "page errors", errors });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(reports, null, 1) + "\n");

async function closeDialogs(page) {
  for (let i = 0; i < 3; i++) {
    const open = await page.evaluate(() => document.querySelectorAll(".p-dialog-mask, [role=dialog]").length);
    if (!open) break;
    await page.keyboard.press("Escape");
    await page.waitForTimeout(300);
  }
}

async function templatesDialog(page, job) {
  // Opens Templates and the pack's section, as a user does, and reports the cards' titles and thumbnails.
  await closeDialogs(page);
  await page.evaluate(async () => {
    const cmd = window.app.extensionManager?.command;
    if (cmd) await cmd.execute("Comfy.BrowseTemplates");
  });
  await page.waitForTimeout(2500);
  const pack = job.templates_dialog;
  const clicked = await page.evaluate((pack) => {
    const items = [...document.querySelectorAll("[role=dialog] *")].filter((e) =>
      e.children.length === 0 && e.textContent.trim() === pack);
    if (!items.length) return false;
    items[0].click();
    return true;
  }, pack);
  await page.waitForTimeout(2500);
  // The grid draws the cards that are in view (12 in a 1280x720 window): scroll it through and gather them all.
  const seen = new Map();
  for (let pass = 0; pass < 8; pass++) {
    const found = await page.evaluate(() => {
      const dialog = document.querySelector("[role=dialog]");
      if (!dialog) return { cards: [], more: false };
      const cards = [...dialog.querySelectorAll("img")].map((img) => ({
        src: decodeURIComponent(img.getAttribute("src") || ""), loaded: img.complete && img.naturalWidth > 0 }));
      let more = false;
      for (const el of dialog.querySelectorAll("*")) {
        if (el.scrollHeight > el.clientHeight + 4 && el.scrollTop + el.clientHeight < el.scrollHeight - 4) {
          el.scrollTop += el.clientHeight;
          more = true;
        }
      }
      return { cards, more };
    });
    for (const card of found.cards) if (!seen.get(card.src)?.loaded) seen.set(card.src, card);
    if (!found.more) break;
    await page.waitForTimeout(1500);
  }
  const cards = [...seen.values()];
  const text = await page.evaluate(() => document.querySelector("[role=dialog]")?.innerText || "");
  if (job.screenshot) await page.screenshot({ path: job.screenshot });
  await closeDialogs(page);
  return { name: job.name, clicked, cards, text };
}

function inspect() {
  const canvas = window.app.canvas;
  const el = canvas.canvas;
  const box = el.getBoundingClientRect();
  const ds = canvas.ds;
  const toScreen = (x, y) => [box.left + (x + ds.offset[0]) * ds.scale, box.top + (y + ds.offset[1]) * ds.scale];
  const titleHeight = window.LiteGraph.NODE_TITLE_HEIGHT;
  // A point is visible when the canvas itself is what the browser finds there (not a panel or a toolbar).
  const visible = (x, y) => {
    if (x < 0 || y < 0 || x >= window.innerWidth || y >= window.innerHeight) return false;
    const hit = document.elementFromPoint(x, y);
    return hit === el;
  };
  const stripVisible = (x, y, w, h) => {
    const [sx, sy] = toScreen(x, y);
    const [ex, ey] = toScreen(x + w, y + h);
    const points = [[sx + 4, sy + 4], [ex - 4, sy + 4], [sx + 4, ey - 4], [ex - 4, ey - 4], [(sx + ex) / 2, (sy + ey) / 2]];
    return points.filter(([px, py]) => !visible(px, py)).length === 0;
  };
  const nodes = window.app.graph._nodes.map((n) => ({
    id: n.id, type: n.type, title: n.title, x: n.pos[0], y: n.pos[1] - titleHeight, w: n.size[0],
    h: n.size[1] + titleHeight, title_visible: stripVisible(n.pos[0], n.pos[1] - titleHeight, Math.min(n.size[0], 200), titleHeight),
  }));
  const groups = (window.app.graph._groups || window.app.graph.groups || []).map((g) => {
    const [x, y, w, h] = g._bounding || g.bounding;
    const header = g.titleHeight || 34;
    return { title: g.title, x, y, w, h, title_visible: stripVisible(x, y, Math.min(w, 200), header) };
  });
  const pinia = [...document.querySelectorAll("*")].find((e) => e.__vue_app__)?.__vue_app__.config.globalProperties.$pinia;
  const store = (id) => pinia?._s.get(id);
  const plain = (value) => JSON.parse(JSON.stringify(value ?? null, (k, v) =>
    (v && typeof v === "object" && !Array.isArray(v) && v.constructor && v.constructor !== Object) ? undefined : v));
  const media = store("missingMedia")?.missingMediaCandidates;
  const models = store("missingModel")?.missingModelCandidates;
  const missingNodes = store("missingNodesError")?.missingNodesError;
  const dialogs = (store("dialog")?.dialogStack || []).map((d) => ({ key: d.key, title: d.title,
    props: plain(d.contentProps) }));
  return {
    frontend: window.__COMFYUI_FRONTEND_VERSION__ || null,
    viewport: [window.innerWidth, window.innerHeight],
    canvas_box: [box.left, box.top, box.width, box.height],
    scale: ds.scale,
    offset: [ds.offset[0], ds.offset[1]],
    low_quality: Boolean(canvas.low_quality ?? canvas._isLowQuality),
    missing_state_stores: Boolean(store("missingMedia") && store("missingModel")),
    nodes,
    groups,
    missing_media: media ? plain(media).filter((m) => m.isMissing !== false) : null,
    missing_models: models ? plain(models).filter((m) => m.isMissing !== false) : null,
    missing_nodes: missingNodes ? plain(missingNodes) : null,
    dialogs,
    text: document.body.innerText.slice(0, 6000),
  };
}
