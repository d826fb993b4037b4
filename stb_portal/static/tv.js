/* Xueliang TV key layer and spatial navigation. ES5 only (old WebKit, iPanel, Huawei
   middleware): no let/const, arrows, classes, promises, fetch, forEach or JSON needs.
   Raw key codes are turned into logical keys by per-platform tables (data, easy to
   extend); one physical press acts once, whether the box sends keydown, keypress or
   onirkeypress. Unknown codes are reported to /tv/keylog. */
(function (win, doc) {
  "use strict";

  var COMMON = { 37: "left", 38: "up", 39: "right", 40: "down", 13: "ok",
    48: "0", 49: "1", 50: "2", 51: "3", 52: "4", 53: "5", 54: "6", 55: "7", 56: "8", 57: "9",
    33: "pageup", 34: "pagedown" };
  var PLATFORMS = {
    hbbtv: { 461: "back", 403: "red", 404: "green", 405: "yellow", 406: "blue", 8: "back" },
    tizen: { 10009: "back", 403: "red", 404: "green", 405: "yellow", 406: "blue", 427: "pageup", 428: "pagedown" },
    ipanel: { 1: "up", 2: "down", 3: "left", 4: "right", 340: "back", 8: "back",
      275: "red", 276: "green", 277: "yellow", 278: "blue", 372: "pageup", 373: "pagedown",
      2305: "red", 833: "green", 834: "yellow", 2308: "blue" },
    huawei: { 8: "back", 275: "red", 276: "green", 277: "yellow", 278: "blue" },
    dvn: { 640: "back", 8: "back", 120: "pageup", 121: "pagedown" },
    inspur: { 8: "back", 27: "back", 112: "red", 113: "green", 114: "yellow", 115: "blue" },
    android: { 4: "back", 8: "back", 27: "back", 183: "red", 184: "green", 185: "yellow", 186: "blue",
      92: "pageup", 93: "pagedown" },
    other: { 461: "back", 10009: "back", 8: "back", 340: "back", 640: "back", 27: "back",
      403: "red", 404: "green", 405: "yellow", 406: "blue",
      275: "red", 276: "green", 277: "yellow", 278: "blue", 372: "pageup", 373: "pagedown" }
  };
  var HBBTV_NAMES = { VK_RED: "red", VK_GREEN: "green", VK_YELLOW: "yellow", VK_BLUE: "blue",
    VK_BACK: "back", VK_ENTER: "ok", VK_LEFT: "left", VK_RIGHT: "right", VK_UP: "up",
    VK_DOWN: "down", VK_PAGE_UP: "pageup", VK_PAGE_DOWN: "pagedown" };

  function platform() {
    var ua = (navigator.userAgent || "").toLowerCase();
    if (ua.indexOf("ipanel") >= 0) { return "ipanel"; }
    if (ua.indexOf("tizen") >= 0) { return "tizen"; }
    if (ua.indexOf("hbbtv") >= 0 || ua.indexOf("web0s") >= 0 || ua.indexOf("webos") >= 0) { return "hbbtv"; }
    if (ua.indexOf("huawei") >= 0 || typeof win.Utility !== "undefined") { return "huawei"; }
    if (ua.indexOf("coship") >= 0 || ua.indexOf("dvn") >= 0) { return "dvn"; }
    if (ua.indexOf("wobox") >= 0 || ua.indexOf("inspur") >= 0) { return "inspur"; }
    if (ua.indexOf("android") >= 0) { return "android"; }
    return "other";
  }

  function keyTable() {
    var table = {}, extra = PLATFORMS[platform()], code, name;
    for (code in COMMON) { if (COMMON.hasOwnProperty(code)) { table[code] = COMMON[code]; } }
    for (code in extra) { if (extra.hasOwnProperty(code)) { table[code] = extra[code]; } }
    if (win.KeyEvent) {  /* HbbTV: the real codes are known only at run time */
      for (name in HBBTV_NAMES) {
        if (HBBTV_NAMES.hasOwnProperty(name) && typeof win.KeyEvent[name] === "number") {
          table[win.KeyEvent[name]] = HBBTV_NAMES[name];
        }
      }
    }
    return table;
  }

  var KEYS = keyTable();
  var focused = null;
  var memory = {};       /* focus group -> id of its last focused element */
  var lastDown = { code: -1, at: 0, up: true };
  var reports = 0;

  function hasClass(el, name) { return (" " + el.className + " ").indexOf(" " + name + " ") >= 0; }
  function addClass(el, name) { if (!hasClass(el, name)) { el.className += " " + name; } }
  function removeClass(el, name) {
    el.className = (" " + el.className + " ").replace(" " + name + " ", " ").replace(/^\s+|\s+$/g, "");
  }

  function focusables() {
    var all = doc.getElementsByTagName("*"), found = [], i;
    for (i = 0; i < all.length; i++) { if (hasClass(all[i], "f")) { found.push(all[i]); } }
    return found;
  }

  function attached(el) {
    while (el) { if (el === doc.body) { return true; } el = el.parentNode; }
    return false;
  }

  function box(el) {
    var r = el.getBoundingClientRect();
    return { l: r.left, t: r.top, r: r.right, b: r.bottom, x: (r.left + r.right) / 2, y: (r.top + r.bottom) / 2 };
  }

  function focus(el) {
    var group;
    if (!el) { return; }
    if (focused) { removeClass(focused, "focus"); }
    focused = el;
    addClass(el, "focus");
    try { el.focus(); } catch (ignored) { /* old engines: the class is enough */ }
    group = el.getAttribute("data-group");
    if (group && el.id) { memory[group] = el.id; }
  }

  /* Focus never gets lost: if the focused element went away, take the default. */
  function ensure() {
    var list, i;
    if (focused && attached(focused)) { return; }
    list = focusables();
    for (i = 0; i < list.length; i++) {
      if (list[i].getAttribute("data-default")) { focus(list[i]); return; }
    }
    if (list.length) { focus(list[0]); }
  }

  /* Distance to a candidate in one direction, or -1 when it is not that way. The
     cross-axis offset weighs more, so the next item in line wins over a diagonal. */
  function distance(dir, a, b) {
    var main, cross;
    if (dir === "right") { if (b.x <= a.x || b.l < a.r - 8) { return -1; } main = b.l - a.r; cross = Math.abs(b.y - a.y); }
    else if (dir === "left") { if (b.x >= a.x || b.r > a.l + 8) { return -1; } main = a.l - b.r; cross = Math.abs(b.y - a.y); }
    else if (dir === "down") { if (b.y <= a.y || b.t < a.b - 8) { return -1; } main = b.t - a.b; cross = Math.abs(b.x - a.x); }
    else { if (b.y >= a.y || b.b > a.t + 8) { return -1; } main = a.t - b.b; cross = Math.abs(b.x - a.x); }
    return Math.max(main, 0) + 3 * cross;
  }

  function enter(el) {
    var group = el.getAttribute("data-group"), remembered;
    if (group && memory[group] && (!focused || focused.getAttribute("data-group") !== group)) {
      remembered = doc.getElementById(memory[group]);
      if (remembered && attached(remembered)) { el = remembered; }
    }
    focus(el);
  }

  function move(dir) {
    var override, target, list, here, best = null, bestScore = Infinity, i, score;
    ensure();
    if (!focused) { return; }
    override = focused.getAttribute("data-" + dir);
    if (override) {
      target = doc.getElementById(override);
      if (target) { enter(target); return; }
    }
    list = focusables();
    here = box(focused);
    for (i = 0; i < list.length; i++) {
      if (list[i] !== focused) {
        score = distance(dir, here, box(list[i]));
        if (score >= 0 && score < bestScore) { bestScore = score; best = list[i]; }
      }
    }
    if (best) { enter(best); }
  }

  function go(href) { if (href) { win.location.href = href; } }

  function activate(el) {
    var tag = el.tagName.toLowerCase();
    focus(el);
    if (tag === "a") { go(el.getAttribute("href")); } else { el.click(); }
  }

  function shortcut(digit) {
    var list = focusables(), i;
    for (i = 0; i < list.length; i++) {
      if (list[i].getAttribute("data-key") === digit) { activate(list[i]); return true; }
    }
    return false;
  }

  function act(key) {
    var body = doc.body;
    if (key === "up" || key === "down" || key === "left" || key === "right") { move(key); return; }
    if (key === "ok") { ensure(); if (focused) { activate(focused); } return; }
    if (key === "back") {
      if (body.getAttribute("data-back")) { go(body.getAttribute("data-back")); } else { win.history.back(); }
      return;
    }
    if (key === "red") { go(body.getAttribute("data-red")); return; }
    if (key === "pageup" || key === "pagedown") { go(body.getAttribute("data-" + key)); return; }
    if (key.length === 1) { shortcut(key); }
  }

  function report(code, type) {
    if (reports >= 5) { return; }
    reports += 1;
    (new Image()).src = "/tv/keylog?c=" + code + "&t=" + type;
  }

  function swallow(e) {
    if (e.preventDefault) { e.preventDefault(); }
    e.returnValue = false;
    return false;
  }

  function handle(e, type) {
    var code, key, now;
    e = e || win.event;
    code = e.keyCode || e.which;
    now = new Date().getTime();
    if (type === "keydown") {
      lastDown = { code: code, at: now, up: false };
    } else if (lastDown.at && (now - lastDown.at < 300 || (!lastDown.up && now - lastDown.at < 2000))) {
      /* the keypress (or irkeypress) of a press already handled on keydown: soon after
         it, or before its keyup (a busy box may deliver the keypress late) */
      return KEYS[code] ? swallow(e) : true;
    }
    key = KEYS[code];
    if (!key) {
      if (type === "keydown" || !lastDown.at) { report(code, type); }
      return true;
    }
    act(key);
    return swallow(e);
  }

  function poll() {
    var url = doc.body.getAttribute("data-poll"), version = doc.body.getAttribute("data-version");
    var request;
    if (!url || !win.XMLHttpRequest) { return; }
    request = new win.XMLHttpRequest();
    request.onreadystatechange = function () {
      if (request.readyState === 4 && request.status === 200 &&
          request.responseText.indexOf(version) < 0) {
        win.location.reload();
      }
    };
    request.open("GET", url, true);
    request.send(null);
  }

  /* When the box's own navigation (or a script) moves the real focus, follow it. */
  function follow() {
    var list = focusables(), i;
    for (i = 0; i < list.length; i++) {
      list[i].onfocus = function () { if (focused !== this) { focus(this); } };
    }
  }

  /* Live camera view: the box's middleware player where there is one (Huawei/Coship
     MediaPlayer, iPanel media.AV) with the continuous MPEG-TS, else <video> with HLS
     where the browser plays it, else a snapshot refreshed every two seconds. */
  function play() {
    var box = doc.getElementById("player"), still = doc.getElementById("still");
    var video, mp, snapshot;
    if (!box) { return ""; }
    try {
      if (win.MediaPlayer) {
        mp = new win.MediaPlayer();
        mp.initMediaPlayer(mp.getNativePlayerInstanceID(), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        mp.setSingleMedia('[{mediaUrl:"' + absolute(box.getAttribute("data-ts")) +
          '",mediaCode:"cam",mediaType:2,audioType:1,videoType:1,streamType:1,drmType:1,' +
          'fingerPrint:0,copyProtection:1,allowTrickmode:0,startTime:0,endTime:0,entryID:"cam"}]');
        mp.setVideoDisplayArea(64, 100, 1152, 490);
        mp.setVideoDisplayMode(0);
        mp.refreshVideoDisplay();
        mp.playFromStart();
        win.onunload = function () { mp.stop(); };
        return "mediaplayer";
      }
      if (win.media && win.media.AV && win.media.AV.open) {
        win.media.AV.open(absolute(box.getAttribute("data-ts")), "VOD");
        if (win.media.video && win.media.video.setPosition) {
          win.media.video.setPosition(64, 100, 1152, 490);
        }
        win.onunload = function () { win.media.AV.close(); };
        return "ipanel";
      }
    } catch (err) { /* a half-working middleware: fall back to what the browser has */ }
    video = doc.createElement("video");
    if (video.canPlayType && video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = box.getAttribute("data-hls");
      video.autoplay = true;
      video.muted = true;
      box.replaceChild(video, still);
      if (video.play) { video.play(); }
      return "hls";
    }
    snapshot = box.getAttribute("data-snapshot");
    win.setInterval(function () {
      still.src = snapshot + "&t=" + new Date().getTime();
    }, 2000);
    return "snapshots";
  }

  function absolute(url) {
    return url.charAt(0) === "/" ? win.location.protocol + "//" + win.location.host + url : url;
  }

  doc.onkeydown = function (e) { return handle(e, "keydown"); };
  doc.onkeypress = function (e) { return handle(e, "keypress"); };
  doc.onkeyup = function () { lastDown.up = true; };
  doc.onirkeypress = function (e) { return handle(e, "irkeypress"); };
  follow();
  ensure();
  if (doc.body.getAttribute("data-poll")) { win.setInterval(poll, 3000); }

  win.XL = {
    keys: KEYS, platform: platform(), focused: function () { return focused; }, player: play()
  };
}(window, document));
