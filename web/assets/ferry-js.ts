// The one script, served from /assets/ferry.js (the page CSP allows script-src 'self' and
// nothing inline). The page works without it; it only adds conveniences:
// - "Copy" buttons for SHA-256 values (rendered hidden, shown here);
// - times in the recipient's own time zone instead of the UTC the server wrote.
// Kept as a string so the compiled package carries it without a copy step.

export const FERRY_JS = `(function () {
  'use strict';
  var lang = document.documentElement.lang || 'en';

  function fallbackCopy(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    var ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    return ok;
  }

  function copyText(el) {
    var text = el.textContent.trim();
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(function () { return true; }, function () { return fallbackCopy(el); });
    }
    return Promise.resolve(fallbackCopy(el));
  }

  var status = document.getElementById('copy-status');
  Array.prototype.forEach.call(document.querySelectorAll('button[data-copy]'), function (btn) {
    var target = document.getElementById(btn.getAttribute('data-copy'));
    if (!target) return;
    var label = btn.textContent;
    var done = btn.getAttribute('data-done') || label;
    var timer;
    btn.hidden = false;
    btn.addEventListener('click', function () {
      copyText(target).then(function (ok) {
        if (!ok) return;
        btn.textContent = done;
        btn.classList.add('done');
        if (status) status.textContent = done;
        clearTimeout(timer);
        timer = setTimeout(function () {
          btn.textContent = label;
          btn.classList.remove('done');
          if (status) status.textContent = '';
        }, 2000);
      });
    });
  });

  // Times are written in UTC by the server; show them in the recipient's own zone instead,
  // keeping the UTC time in the tooltip.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var locale = document.documentElement.getAttribute('data-locale') || lang;
    if (zone && zone !== 'UTC' && zone !== 'Etc/UTC') {
      var fmt = new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'short' });
      Array.prototype.forEach.call(document.querySelectorAll('time[data-local]'), function (t) {
        var d = new Date(t.getAttribute('datetime'));
        if (isNaN(d.getTime())) return;
        t.title = t.textContent;
        t.textContent = fmt.format(d);
      });
    }
  } catch (e) { /* an old browser without Intl time zones: UTC stays */ }
})();
`;
