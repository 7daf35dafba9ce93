// Azen console: the little JavaScript the pages need, no library.
// - forms with data-confirm ask before they are sent (disable, delete, reroll);
// - selects with data-autosubmit send their form on change;
// - buttons with data-copy copy a field (the new key) to the clipboard;
// - #memories is the memory browser, calling /api/v1 with the session cookie.
"use strict";

document.addEventListener("submit", (ev) => {
  const form = ev.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) ev.preventDefault();
});

document.addEventListener("change", (ev) => {
  const el = ev.target;
  if (el.matches && el.matches("select[data-autosubmit]") && el.value !== "") el.form.requestSubmit();
});

document.addEventListener("click", async (ev) => {
  const btn = ev.target.closest && ev.target.closest("[data-copy]");
  if (!btn) return;
  const field = document.querySelector(btn.getAttribute("data-copy"));
  const status = document.querySelector("[data-copy-status]");
  field.select();
  let ok = false;
  try {
    await navigator.clipboard.writeText(field.value);
    ok = true;
  } catch (e) {
    ok = document.execCommand && document.execCommand("copy");
  }
  btn.textContent = ok ? "Copied" : "Copy";
  if (status) status.textContent = ok ? "Copied to the clipboard." : "Select the key and copy it with Ctrl+C.";
});

function memoryBrowser(root) {
  const api = root.getAttribute("data-api");
  const list = root.querySelector("#memory-list");
  const status = root.querySelector("#memory-status");
  const pageLabel = root.querySelector("#memory-page");
  const prev = root.querySelector("#memory-prev");
  const next = root.querySelector("#memory-next");
  const view = root.querySelector("#memory-view");
  const per = 10;
  let page = 1;
  let query = "";
  let current = null;

  async function call(method, path, body) {
    const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(path, opts);
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(data.message || "Request failed (" + resp.status + ")");
    return data;
  }

  function say(text) { status.textContent = text; }

  function item(m, score) {
    const li = document.createElement("li");
    li.className = "card memory";
    const text = document.createElement("p");
    text.className = "memory-text";
    const content = m.content || "";
    text.textContent = content.length > 280 ? content.slice(0, 280) + "…" : content;
    const meta = document.createElement("p");
    meta.className = "muted";
    meta.textContent = new Date(m.createdAt).toLocaleString() + " · " + (m.userId || "") +
      (score !== undefined ? " · score " + score.toFixed(2) : "");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "small secondary";
    open.textContent = "View";
    open.addEventListener("click", () => show(m.id));
    li.append(text, meta, open);
    return li;
  }

  async function load() {
    view.hidden = true;
    say("Loading…");
    try {
      let memories, scores = [];
      if (query) {
        const data = await call("POST", api + "/search", { query, topK: 20 });
        memories = data.memories;
        scores = data.rawMatches.map((r) => r.score);
        pageLabel.textContent = "";
        prev.hidden = next.hidden = true;
      } else {
        const data = await call("GET", api + "?page=" + page + "&per=" + per);
        memories = data.memories;
        pageLabel.textContent = "Page " + data.page + " of " + Math.max(1, data.total_pages);
        prev.hidden = next.hidden = false;
        prev.disabled = page <= 1;
        next.disabled = page >= data.total_pages;
      }
      list.replaceChildren(...memories.map((m, i) => item(m, scores[i])));
      say(memories.length === 0 ? (query ? "No memory matches." : "No memories yet.") :
        memories.length + (query ? " matching memories." : " memories on this page."));
    } catch (e) {
      say(e.message);
    }
  }

  async function show(id) {
    try {
      const data = await call("GET", api + "/" + encodeURIComponent(id));
      current = data.memory;
      const facts = root.querySelector("#memory-facts");
      facts.replaceChildren();
      for (const [k, v] of [["Id", current.id], ["Created", current.createdAt], ["Updated", current.updatedAt],
        ["User", current.userId], ["Metadata", current.metadata ? JSON.stringify(current.metadata) : "none"]]) {
        const dt = document.createElement("dt"); dt.textContent = k;
        const dd = document.createElement("dd"); dd.textContent = v;
        facts.append(dt, dd);
      }
      root.querySelector("#memory-content").textContent = current.content;
      view.hidden = false;
      view.focus();
    } catch (e) {
      say(e.message);
    }
  }

  root.querySelector("#memory-search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    query = root.querySelector("#memory-query").value.trim();
    page = 1;
    load();
  });
  root.querySelector("#memory-clear").addEventListener("click", () => {
    root.querySelector("#memory-query").value = "";
    query = "";
    page = 1;
    load();
  });
  root.querySelector("#memory-add").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const field = root.querySelector("#memory-text");
    try {
      await call("POST", api, { text: field.value });
      field.value = "";
      query = "";
      page = 1;
      await load();
      say("Memory added.");
    } catch (e) {
      say(e.message);
    }
  });
  prev.addEventListener("click", () => { if (page > 1) { page--; load(); } });
  next.addEventListener("click", () => { page++; load(); });
  root.querySelector("#memory-close").addEventListener("click", () => { view.hidden = true; });
  root.querySelector("#memory-delete").addEventListener("click", async () => {
    if (!current || !window.confirm("Delete this memory for good?")) return;
    try {
      await call("DELETE", api + "/" + encodeURIComponent(current.id));
      current = null;
      await load();
      say("Memory deleted.");
    } catch (e) {
      say(e.message);
    }
  });
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("memories");
  if (root) memoryBrowser(root);
});
