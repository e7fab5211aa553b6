"use strict";
// The catalog page's behaviour: search, filters and sorting over the cards the page already holds, a link
// instead of a player for formats this browser cannot play, and in review mode, saving decisions.
(() => {
  const config = JSON.parse(document.getElementById("page-config").textContent);
  const grid = document.getElementById("cards");
  const cards = Array.from(grid.querySelectorAll("article.card"));
  const $ = (id) => document.getElementById(id);
  const number = (text) => (text === "" || text === undefined ? NaN : Number(text));

  // Search text per card, read once from what the card shows (kept out of the HTML: no duplicated prompts).
  const haystack = new Map(cards.map((card) => {
    const parts = [".title", ".sub", ".prompt", ".tags", ".facts"].map((sel) => card.querySelector(sel));
    return [card, parts.map((el) => (el ? el.textContent : "")).join(" ").toLowerCase()];
  }));

  function wanted() {
    const filters = {};
    for (const select of document.querySelectorAll("select[data-filter]")) filters[select.dataset.filter] = select.value;
    return {
      words: $("search").value.toLowerCase().split(/\s+/).filter(Boolean),
      filters,
      bpmMin: number($("bpm-min").value),
      bpmMax: number($("bpm-max").value),
    };
  }

  function matches(card, want) {
    const text = haystack.get(card);
    if (!want.words.every((word) => text.includes(word))) return false;
    const f = want.filters;
    const listed = (attr, value) => (card.dataset[attr] || "").toLowerCase().split("|").includes(value.toLowerCase());
    if (f.genre && !listed("tags", f.genre)) return false;
    if (f.mood && card.dataset.mood !== f.mood) return false;
    if (f.status && card.dataset.status !== f.status) return false;
    if (f.version && !listed("versions", f.version)) return false;
    if (f.decision && (card.dataset.decision || "none") !== f.decision) return false;
    const bpm = number(card.dataset.bpm);
    if (!Number.isNaN(want.bpmMin) && !(bpm >= want.bpmMin)) return false;
    if (!Number.isNaN(want.bpmMax) && !(bpm <= want.bpmMax)) return false;
    return true;
  }

  function applyFilters() {
    const want = wanted();
    let shown = 0;
    for (const card of cards) {
      const ok = matches(card, want);
      card.hidden = !ok;
      shown += ok ? 1 : 0;
    }
    $("shown-count").textContent = `${shown} of ${cards.length}`;
    $("no-match").hidden = shown > 0;
  }

  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  function applySort() {
    const choice = $("sort").value;
    const key = choice.replace(/^-/, "");
    const sign = choice.startsWith("-") ? -1 : 1;
    const title = (card) => card.querySelector(".title").textContent;
    const order = cards.slice().sort((a, b) => {
      if (key === "title") return collator.compare(title(a), title(b));
      const x = number(a.dataset[key]);
      const y = number(b.dataset[key]);
      const unknown = Number.isNaN(x) - Number.isNaN(y); // cards without the value go last
      const known = Number.isNaN(x) || Number.isNaN(y) ? 0 : sign * (x - y);
      return unknown || known || number(a.dataset.row) - number(b.dataset.row);
    });
    grid.append(...order);
  }

  // A format this browser cannot play gets a download link in place of a silent, broken player.
  for (const audio of document.querySelectorAll("audio[data-type]")) {
    if (audio.dataset.type && audio.canPlayType(audio.dataset.type) === "") {
      const note = document.createElement("span");
      note.className = "unplayable";
      note.textContent = `this browser cannot play ${audio.dataset.type.replace("audio/", "")}: download it`;
      audio.replaceWith(note);
    }
  }

  // One player at a time: starting a track pauses the one playing.
  document.addEventListener("play", (event) => {
    for (const audio of document.querySelectorAll("audio")) if (audio !== event.target) audio.pause();
  }, true);

  const form = $("filters");
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("input", applyFilters);
  form.addEventListener("change", applyFilters);
  $("sort").addEventListener("change", applySort);

  async function decide(card, decision) {
    const error = card.querySelector(".review-error");
    const buttons = card.querySelectorAll("button.decide");
    buttons.forEach((b) => { b.disabled = true; });
    error.hidden = true;
    const d = card.dataset;
    const body = {
      track_id: d.trackId, song_index: Number(d.songIndex), seed: d.seed === "" ? null : Number(d.seed),
      file: d.file, decision, note: card.querySelector("textarea.note").value,
    };
    try {
      const answer = await fetch("api/decisions", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Review-Token": config.token },
        body: JSON.stringify(body),
      });
      if (!answer.ok) throw new Error(`not saved: the server answered ${answer.status} ${(await answer.text()).slice(0, 200)}`);
      card.dataset.decision = decision;
      card.querySelector(".decision").textContent = decision;
      applyFilters();
    } catch (failure) {
      error.textContent = failure instanceof TypeError ? "not saved: the review server cannot be reached" : failure.message;
      error.hidden = false;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  if (config.review) {
    grid.addEventListener("click", (event) => {
      const button = event.target.closest("button.decide");
      if (button) decide(button.closest("article.card"), button.dataset.decision);
    });
  }
  applyFilters();
})();
