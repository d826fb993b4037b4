/* Xueliang centre console: live alarm board over Server-Sent Events, the alarm sound,
   countdowns and local times. Plain modern JavaScript, no build step, no CDN. */
(function () {
  "use strict";
  var body = document.body;
  var page = body.dataset.page;
  var OPENED_KEY = "xl-opened-alarms";

  function opened() {
    try { return JSON.parse(localStorage.getItem(OPENED_KEY) || "[]"); } catch (e) { return []; }
  }
  function markOpened(id) {
    var list = opened().filter(function (x) { return x !== id; });
    list.push(id);
    localStorage.setItem(OPENED_KEY, JSON.stringify(list.slice(-500)));
  }

  // --- times: local clock, ages, escalation countdowns ------------------------------
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function clock(iso) {
    var d = new Date(iso);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".moment[data-at]").forEach(function (el) {
      if (el.dataset.at && !isNaN(Date.parse(el.dataset.at))) { el.textContent = clock(el.dataset.at); }
    });
    document.querySelectorAll(".age[data-since]").forEach(function (el) {
      var minutes = Math.floor((now - Date.parse(el.dataset.since)) / 60000);
      el.textContent = minutes < 1 ? labels.just_now : labels.ago.replace("%(minutes)s", minutes);
      el.title = clock(el.dataset.since);
    });
    document.querySelectorAll(".countdown").forEach(function (el) {
      if (!el.dataset.until) { el.textContent = "—"; return; }
      var left = Math.round((Date.parse(el.dataset.until) - now) / 1000);
      el.textContent = left > 0 ? Math.floor(left / 60) + ":" + pad(left % 60) : labels.escalated;
      el.classList.toggle("soon", left > 0 && left <= 30);
    });
  }

  var villagesNode = document.getElementById("villages");
  var villages = villagesNode ? JSON.parse(villagesNode.textContent) : {};
  var labelsNode = document.getElementById("labels");
  var labels = labelsNode ? JSON.parse(labelsNode.textContent) : {
    just_now: "", ago: "%(minutes)s", escalated: "!"
  };

  // --- the sound: repeats while a new alarm has not been opened ---------------------
  var audio = null;
  var soundButton = document.getElementById("sound");
  function ensureAudio() {
    if (!audio && window.AudioContext) { audio = new AudioContext(); }
    return audio;
  }
  function beep() {
    var ctx = ensureAudio();
    if (!ctx) { return; }
    if (ctx.state !== "running") {
      if (soundButton) { soundButton.hidden = false; }  // the browser wants a click first
      return;
    }
    [0, 0.35].forEach(function (offset) {
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.25;
      osc.connect(gain); gain.connect(ctx.destination);
      osc.start(ctx.currentTime + offset); osc.stop(ctx.currentTime + offset + 0.2);
    });
  }
  if (soundButton) {
    soundButton.addEventListener("click", function () {
      var ctx = ensureAudio();
      if (ctx) { ctx.resume(); }
      soundButton.hidden = true;
    });
  }
  function ringing() {
    var seen = opened();
    var rows = document.querySelectorAll("#alarms tbody tr[data-state='received']");
    for (var i = 0; i < rows.length; i++) {
      if (seen.indexOf(Number(rows[i].dataset.alarm)) < 0) { return true; }
    }
    return false;
  }
  function ring() {
    var on = page === "board" && ringing();
    body.dataset.ringing = on ? "1" : "0";
    if (on) { beep(); }
  }

  // --- the board: rows kept in order (priority, then age) ---------------------------
  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = text;
    return td;
  }
  function row(a) {
    var tr = document.createElement("tr");
    tr.id = "alarm-" + a.alarm;
    tr.className = "p" + a.priority + " s-" + a.state + (a.unregistered ? " unregistered" : "");
    tr.dataset.alarm = a.alarm; tr.dataset.state = a.state; tr.dataset.priority = a.priority;
    tr.appendChild(cell(labels.kinds[a.kind] || a.kind, "kind"));
    var link = document.createElement("a");
    link.href = "/centre/alarms/" + a.alarm; link.textContent = "#" + a.alarm;
    var linkCell = cell(""); linkCell.appendChild(link); tr.appendChild(linkCell);
    var who = cell("", "who");
    if (a.household) {
      who.appendChild(document.createTextNode(a.household.name));
      who.appendChild(document.createElement("br"));
      var small = document.createElement("small");
      small.textContent = a.household.address + " · " + a.household.phone;
      who.appendChild(small);
    } else {
      var strong = document.createElement("strong");
      strong.textContent = labels.unregistered;
      who.appendChild(strong);
      who.appendChild(document.createTextNode(" " + (a.device || "")));
    }
    tr.appendChild(who);
    tr.appendChild(cell(a.village ? (villages[a.village] || a.village) : "—"));
    tr.appendChild(cell(labels.states[a.state] || a.state, "state"));
    tr.appendChild(cell(labels.levels[a.level] || a.level));
    var age = cell("", "age"); age.dataset.since = a.raised_at; tr.appendChild(age);
    var countdown = cell("", "countdown"); countdown.dataset.until = a.escalate_at || "";
    tr.appendChild(countdown);
    tr.appendChild(cell(String(a.presses), "presses"));
    return tr;
  }
  function place(a) {
    var tbody = document.querySelector("#alarms tbody");
    var old = document.getElementById("alarm-" + a.alarm);
    if (old) { old.remove(); }
    if (labels.states[a.state]) {
      var fresh = row(a);
      var rows = tbody.querySelectorAll("tr");
      var before = null;
      for (var i = 0; i < rows.length; i++) {
        var p = Number(rows[i].dataset.priority), id = Number(rows[i].dataset.alarm);
        if (p > a.priority || (p === a.priority && id > a.alarm)) { before = rows[i]; break; }
      }
      tbody.insertBefore(fresh, before);
    }
    document.getElementById("empty").hidden = tbody.querySelector("tr") !== null;
  }
  function reload() {
    fetch("/centre/board.json", { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        document.querySelector("#alarms tbody").textContent = "";
        data.alarms.forEach(place);
        tick(); ring();
      });
  }

  // --- live events ------------------------------------------------------------------
  function follow() {
    var live = document.getElementById("live");
    // From the moment the page was read: nothing raised while it loaded is missed.
    var since = body.dataset.lastEvent;
    var source = new EventSource("/api/v1/events" + (since ? "?last_event_id=" + since : ""));
    source.addEventListener("hello", function () {
      if (live) { live.dataset.state = "live"; live.textContent = labels.live; }
    });
    source.addEventListener("reset", function () { if (page === "board") { reload(); } });
    source.addEventListener("alarm", function (event) {
      var a = JSON.parse(event.data);
      if (page === "board") {
        place(a); tick(); ring();
      } else if (page === "alarm" && a.alarm === Number(body.dataset.alarm) &&
                 a.updated_at !== body.dataset.updated) {
        var typing = Array.prototype.some.call(document.querySelectorAll("input[name=note]"),
          function (input) { return input.value !== ""; });
        document.getElementById("changed").hidden = false;
        if (!typing) { window.location.reload(); }
      }
    });
    source.onerror = function () {
      if (live) { live.dataset.state = "reconnecting"; live.textContent = labels.reconnecting; }
    };
  }

  // Camera stills: refreshed in place; a picture that does not exist (no snapshot was
  // taken at the moment of the alarm) is hidden instead of shown broken.
  document.querySelectorAll("img.live, img.moment").forEach(function (img) {
    img.addEventListener("error", function () { img.hidden = true; });
    img.addEventListener("load", function () { img.hidden = false; });
  });
  document.querySelectorAll("img[data-refresh]").forEach(function (img) {
    var base = img.getAttribute("src");
    setInterval(function () {
      if (!document.hidden) { img.src = base + "?t=" + Date.now(); }
    }, Number(img.dataset.refresh) * 1000);
  });

  if (page === "alarm") { markOpened(Number(body.dataset.alarm)); }
  tick();
  setInterval(tick, 1000);
  if (page === "board" || page === "alarm") {
    follow();
    ring();
    setInterval(ring, 3000);
  }
}());
