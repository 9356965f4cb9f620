// The failure explorer: filters, sorts and shows the per-image rows embedded in this page.
// Plain JavaScript written for this report: no library, no network, no eval; every string
// from the run (class, model and stressor names) reaches the page through textContent.
(function () {
  'use strict';
  var root = document.getElementById('fm-explorer');
  var src = document.getElementById('fm-explorer-data');
  if (!root || !src) { return; }
  var D = JSON.parse(src.textContent);
  var MISSING = 65535, PAGE = 48, SCALE = 2;

  function decode(b64, Type) {
    var s = atob(b64), u = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) { u[i] = s.charCodeAt(i); }
    return new Type(u.buffer);
  }
  var N = D.n, idx = decode(D.idx, Int32Array), label = decode(D.label, Uint16Array);
  var pred = decode(D.pred, Uint16Array), conf = decode(D.conf, Float32Array);
  var cells = D.cells, S = D.stressors, thumbs = D.thumbs || null;
  var cams = D.cams || null, camMaps = cams ? decode(cams.maps, Uint8Array) : null;
  var B = D.breaks || null;   // breaking points: codes into B.values[model][stressor]
  var bcodes = B ? decode(B.codes, B.dtype === 'uint16' ? Uint16Array : Uint8Array) : null;
  var BNONE = B ? (B.dtype === 'uint16' ? 65535 : 255) : 0, BNEVER = BNONE - 1;
  var thumbAt = {};   // image position -> slot in the sprite sheets (flips got theirs first)
  if (thumbs) {
    (thumbs.pos || Array.from({length: thumbs.k}, function (_, p) { return p; }))
      .forEach(function (p, t) { thumbAt[p] = t; });
  }
  var camAt = {};   // image position -> slot in the CAM sample
  if (cams) { cams.pos.forEach(function (p, k) { if (p >= 0) { camAt[p] = k; } }); }

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function option(select, value, text) {
    var o = el('option', null, text); o.value = String(value); select.appendChild(o);
  }
  function fmtSev(v) { return String(Math.round(v * 1000) / 1000); }
  function cellName(c) {
    var s = S[cells[c][1]];
    return s.name === 'clean' ? 'clean' : s.name + ' ' + fmtSev(cells[c][2]);
  }

  // ------------------------------------------------------------------ controls
  var f = {model: $('fm-f-model'), family: $('fm-f-family'), stressor: $('fm-f-stressor'),
           severity: $('fm-f-severity'), truth: $('fm-f-true'), pred: $('fm-f-pred'),
           outcome: $('fm-f-outcome'), cmin: $('fm-f-cmin'), cmax: $('fm-f-cmax'),
           bmax: $('fm-f-bmax'), sort: $('fm-sort')};
  D.models.forEach(function (m, i) { option(f.model, i, m); });
  var families = [];
  S.forEach(function (s) { if (families.indexOf(s.family) < 0) { families.push(s.family); } });
  families.forEach(function (fam) { option(f.family, fam, fam); });
  D.classes.forEach(function (c, i) { option(f.truth, i, c); option(f.pred, i, c); });

  function fillStressors() {
    var keep = f.stressor.value;
    while (f.stressor.options.length > 1) { f.stressor.remove(1); }
    S.forEach(function (s, i) {
      if (f.family.value === 'all' || s.family === f.family.value) { option(f.stressor, i, s.name); }
    });
    f.stressor.value = keep;
    if (f.stressor.value !== keep) { f.stressor.value = 'all'; }
    fillSeverities();
  }
  function fillSeverities() {
    var keep = f.severity.value, vals = [];
    cells.forEach(function (c) {
      if (stressorOk(c[1]) && vals.indexOf(c[2]) < 0) { vals.push(c[2]); }
    });
    vals.sort(function (a, b) { return a - b; });
    while (f.severity.options.length > 1) { f.severity.remove(1); }
    vals.forEach(function (v) { option(f.severity, v, fmtSev(v)); });
    f.severity.value = keep;
    if (f.severity.value !== keep) { f.severity.value = 'all'; }
  }
  function stressorOk(s) {
    if (f.stressor.value !== 'all') { return s === +f.stressor.value; }
    return f.family.value === 'all' || S[s].family === f.family.value;
  }

  // ------------------------------------------------------------------ filtering
  var matches = new Int32Array(0), shown = 0;
  function cleanCell(m) { var c = D.clean[String(m)]; return c === undefined ? -1 : c; }
  // The severity at which image i first breaks under stressor s for model m: a number,
  // Infinity (never within the sweep) or null (wrong when clean, or no such cells).
  function breakAt(m, s, i) {
    if (!B) { return null; }
    var k = bcodes[(m * S.length + s) * N + i];
    if (k === BNONE) { return null; }
    return k === BNEVER ? Infinity : B.values[m][s][k];
  }

  function apply() {
    var m = f.model.value, sev = f.severity.value, t = f.truth.value, p = f.pred.value;
    var out = f.outcome.value, lo = parseFloat(f.cmin.value), hi = parseFloat(f.cmax.value);
    if (isNaN(lo)) { lo = 0; }
    if (isNaN(hi)) { hi = 1; }
    var tv = t === 'all' ? -1 : +t, pv = p === 'all' ? -1 : +p;
    var bmax = f.bmax ? parseFloat(f.bmax.value) : NaN;
    var buf = [];
    for (var c = 0; c < cells.length; c++) {
      var cell = cells[c];
      if (m !== 'all' && cell[0] !== +m) { continue; }
      if (!stressorOk(cell[1])) { continue; }
      if (sev !== 'all' && cell[2] !== +sev) { continue; }
      var ref = cleanCell(cell[0]), base = c * N, rbase = ref * N;
      for (var i = 0; i < N; i++) {
        var q = pred[base + i];
        if (q === MISSING) { continue; }
        var y = label[i];
        if (tv >= 0 && y !== tv) { continue; }
        if (pv >= 0 && q !== pv) { continue; }
        var k = conf[base + i];
        if (k < lo || k > hi) { continue; }
        if (out === 'wrong' && q === y) { continue; }
        if (out === 'right' && q !== y) { continue; }
        if (out === 'flipped' && !(q !== y && ref >= 0 && pred[rbase + i] === y)) { continue; }
        if (!isNaN(bmax)) {
          var ba = breakAt(cell[0], cell[1], i);
          if (ba === null || !(ba <= bmax)) { continue; }
        }
        buf.push(base + i);
      }
    }
    matches = Int32Array.from(buf);
    sortMatches();
    $('fm-count').textContent = String(matches.length);
    $('fm-count-images').textContent = String(distinctImages());
    shown = 0;
    var grid = $('fm-grid');
    while (grid.firstChild) { grid.removeChild(grid.firstChild); }
    more();
  }
  function distinctImages() {
    var seen = new Uint8Array(N), n = 0;
    for (var j = 0; j < matches.length; j++) {
      var i = matches[j] % N;
      if (!seen[i]) { seen[i] = 1; n++; }
    }
    return n;
  }
  function flipped(r) {
    var c = (r / N) | 0, i = r % N, ref = cleanCell(cells[c][0]);
    return pred[r] !== label[i] && ref >= 0 && pred[ref * N + i] === label[i];
  }
  function breakKey(r) {   // earliest first; never after any severity; none last
    var c = (r / N) | 0, b = breakAt(cells[c][0], cells[c][1], r % N);
    return b === null ? Number.MAX_VALUE : (b === Infinity ? Number.MAX_VALUE / 2 : b);
  }
  function sortMatches() {
    var how = f.sort.value, a = Array.prototype.slice.call(matches);
    if (how === 'conf-desc') { a.sort(function (x, y) { return conf[y] - conf[x] || x - y; }); }
    else if (how === 'conf-asc') { a.sort(function (x, y) { return conf[x] - conf[y] || x - y; }); }
    else if (how === 'breaks') {
      a.sort(function (x, y) { return (breakKey(x) - breakKey(y)) || (x - y); });
    } else if (how === 'flipped') {
      a.sort(function (x, y) {
        return (flipped(y) - flipped(x)) || (conf[y] - conf[x]) || (x - y);
      });
    } else { a.sort(function (x, y) { return (x % N) - (y % N) || x - y; }); }
    matches = Int32Array.from(a);
  }

  // ------------------------------------------------------------------ cards
  function spriteFor(stressor) {
    if (!thumbs || !thumbs.sprites[stressor]) { return null; }
    var meta = thumbs.sprites[stressor], img = $(meta.img);
    return img ? {meta: meta, img: img} : null;
  }
  function thumb(stressor, value, i, caption) {
    var box = el('div', 'fm-thumb'), sp = spriteFor(stressor), size = thumbs ? thumbs.size : 32;
    var canvas = el('canvas');
    canvas.width = canvas.height = size * SCALE;
    box.appendChild(canvas);
    box.appendChild(el('span', 'fm-cap', caption));
    var g = sp ? sp.meta.values.indexOf(value) : -1;
    var t = thumbAt[i];
    if (!sp || g < 0 || t === undefined) {
      box.classList.add('fm-none');
      canvas.setAttribute('aria-label', 'no thumbnail embedded');
      return box;
    }
    var cols = sp.meta.cols, rows = Math.ceil(thumbs.k / cols);
    var sx = (t % cols) * size, sy = (g * rows + ((t / cols) | 0)) * size;
    function draw() {
      var ctx = canvas.getContext('2d');
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(sp.img, sx, sy, size, size, 0, 0, size * SCALE, size * SCALE);
      canvas.setAttribute('data-drawn', '1');
    }
    if (sp.img.complete && sp.img.naturalWidth) { draw(); }
    else { sp.img.addEventListener('load', draw); }
    return box;
  }
  // A CAM (side × side, 0–255) as a translucent heat map over the stressed thumbnail.
  function heat(v) {
    var t = v / 255;
    return [Math.round(255 * Math.min(1, 1.8 * t)), Math.round(255 * Math.max(0, 1.6 * t - 0.5)),
            Math.round(255 * Math.max(0, 0.6 - t)), Math.round(60 + 130 * t)];
  }
  function camGroup(stressor, value) {
    if (!cams) { return -1; }
    for (var g = 0; g < cams.groups.length; g++) {
      if (cams.groups[g][0] === stressor && cams.groups[g][1] === value) { return g; }
    }
    return -1;
  }
  function camBox(m, stressor, value, i, caption) {
    var k = camAt[i], g = camGroup(stressor, value), G = cams ? cams.groups.length : 0;
    if (k === undefined || g < 0 || !cams.present[m * G + g]) { return null; }
    var side = cams.side, K = cams.pos.length, off = (((m * G + g) * K) + k) * side * side;
    var box = thumb(stressor, value, i, 'CAM ' + (stressor === 'clean' ? 'clean' : fmtSev(value)));
    var canvas = box.querySelector('canvas'), small = document.createElement('canvas');
    small.width = small.height = side;
    var img = small.getContext('2d').createImageData(side, side);
    for (var p = 0; p < side * side; p++) {
      var c = heat(camMaps[off + p]);
      img.data[4 * p] = c[0]; img.data[4 * p + 1] = c[1]; img.data[4 * p + 2] = c[2];
      img.data[4 * p + 3] = c[3];
    }
    small.getContext('2d').putImageData(img, 0, 0);
    function overlay() {
      var ctx = canvas.getContext('2d');
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
      canvas.setAttribute('data-cam', '1');
    }
    if (canvas.getAttribute('data-drawn')) { overlay(); }
    else { var sp = spriteFor(stressor); if (sp) { sp.img.addEventListener('load', overlay); } }
    box.classList.add('fm-cam');
    return box;
  }
  function card(r) {
    var c = (r / N) | 0, i = r % N, cell = cells[c], s = S[cell[1]];
    var y = label[i], q = pred[r], ref = cleanCell(cell[0]);
    var box = el('article', 'fm-card' + (q === y ? ' fm-right' : ' fm-wrong'));
    box.setAttribute('data-conf', String(conf[r]));
    var pics = el('div', 'fm-pics');
    pics.appendChild(thumb('clean', 0, i, 'clean'));
    if (s.name !== 'clean') { pics.appendChild(thumb(s.name, cell[2], i, cellName(c))); }
    var cb = camBox(cell[0], s.name, cell[2], i);
    if (cb) { pics.appendChild(cb); }
    box.appendChild(pics);
    var dl = el('dl');
    function row(k, v, cls) {
      var d = el('div', cls); d.appendChild(el('dt', null, k)); d.appendChild(el('dd', null, v));
      dl.appendChild(d);
    }
    row('image', '#' + idx[i] + (D.files ? ' · ' + D.files[i] : ''));
    row('true', D.classes[y]);
    if (ref >= 0 && s.name !== 'clean') {
      var cp = pred[ref * N + i];
      row('clean →', D.classes[cp] + (cp === y ? ' ✓' : ' ✗'), cp === y ? 'ok' : 'bad');
    }
    row(s.name === 'clean' ? 'predicted' : 'stressed →', D.classes[q] + (q === y ? ' ✓' : ' ✗'),
        q === y ? 'ok' : 'bad');
    row('confidence', conf[r].toFixed(3));
    if (s.name !== 'clean' && B) {
      var ba = breakAt(cell[0], cell[1], i);
      row('breaks at', ba === null ? '—' : (ba === Infinity ? 'never' : fmtSev(ba)));
    }
    row('model', D.models[cell[0]]);
    box.appendChild(dl);
    if (flipped(r)) { box.appendChild(el('span', 'fm-flag', 'flipped right → wrong')); }
    return box;
  }
  function more() {
    var grid = $('fm-grid'), end = Math.min(matches.length, shown + PAGE);
    for (; shown < end; shown++) { grid.appendChild(card(matches[shown])); }
    $('fm-shown').textContent = String(shown);
    $('fm-more').hidden = shown >= matches.length;
  }

  f.family.addEventListener('change', function () { fillStressors(); apply(); });
  f.stressor.addEventListener('change', function () { fillSeverities(); apply(); });
  [f.model, f.severity, f.truth, f.pred, f.outcome, f.sort].forEach(function (e) {
    e.addEventListener('change', apply);
  });
  [f.cmin, f.cmax, f.bmax].forEach(function (e) { if (e) { e.addEventListener('input', apply); } });
  $('fm-more').addEventListener('click', more);
  $('fm-reset').addEventListener('click', function () {
    ['model', 'family', 'stressor', 'severity', 'truth', 'pred'].forEach(function (k) {
      f[k].value = 'all';
    });
    f.outcome.value = OPEN; f.cmin.value = '0'; f.cmax.value = '1'; f.sort.value = 'conf-desc';
    if (f.bmax) { f.bmax.value = ''; }
    fillStressors(); apply();
  });
  fillStressors();
  apply();
  // The page opens on the images that flipped (right when clean, wrong when stressed): what
  // the corruption did, not what was wrong before it. Without any flip, on the wrong ones.
  var OPEN = 'flipped';
  if (!matches.length && f.outcome.value === 'flipped') { OPEN = 'wrong'; f.outcome.value = OPEN; apply(); }
  root.setAttribute('data-ready', '1');
})();
