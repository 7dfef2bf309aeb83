// The tracking script served at /js/script.js. Sends Plausible's event
// format (POST /api/event, text/plain: no CORS preflight) to the api the
// script was loaded from. No cookies, no storage. Options are attributes
// of the script tag:
//   data-domain="example.com"   the site (a comma list sends to each)
//   data-api="https://…/api/event"   another endpoint
//   data-hash                   hash-based routing: the fragment is the page
//   data-outbound-links         outbound link clicks as "Outbound Link: Click"
//   data-file-downloads[="pdf,zip"]  downloads as "File Download"
//   data-respect-dnt            nothing when Do-Not-Track is on
//   data-local                  also on localhost and file:
//   data-automated              also in automated browsers (webdriver)
// Custom events: analytics('Signup', {props: {plan: 'pro'}, callback}), or
// the classes analytics-event-name=Signup analytics-event-plan=pro on a
// clicked element (or one up to three levels above it).
(function () {
  var w = window, d = document, l = w.location, n = w.navigator;
  var s = d.currentScript;
  var attr = function (a) { return s.getAttribute('data-' + a); };
  var has = function (a) { return s.hasAttribute('data-' + a); };
  var api = attr('api') || new URL(s.src).origin + '/api/event';
  var hash = has('hash');
  var files = has('file-downloads') &&
    (attr('file-downloads') || 'pdf,xlsx,docx,txt,rtf,csv,exe,key,pps,ppt,pptx,7z,pkg,rar,gz,zip,avi,mov,mp4,mpeg,wmv,midi,mp3,wav,wma,dmg').split(',');
  var queued = (w.analytics && w.analytics.q) || [];
  var last;

  function send(name, o) {
    o = o || {};
    var skip = (!has('local') && (/^localhost$|^127(\.\d+){3}$|^\[::1?\]$/.test(l.hostname) || l.protocol == 'file:')) ||
      (!has('automated') && (n.webdriver || w._phantom || w.__nightmare || w.Cypress)) ||
      (has('respect-dnt') && (n.doNotTrack == '1' || w.doNotTrack == '1'));
    if (skip) return o.callback && o.callback();
    var p = { n: name, u: o.url || l.href, d: attr('domain'), r: d.referrer || null };
    if (o.props) p.p = o.props;
    if (hash) p.h = 1;
    fetch(api, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, keepalive: true, body: JSON.stringify(p) })
      .then(function () { o.callback && o.callback(); }, function () { o.callback && o.callback(); });
  }

  function page() {
    var at = hash ? l.pathname + l.hash : l.pathname;
    if (at == last) return;
    last = at;
    send('pageview');
  }

  function classEvent(el) {
    for (var i = 0; el && i < 4; i++, el = el.parentNode) {
      var e = { props: {} }, c = el.classList || [];
      for (var j = 0; j < c.length; j++) {
        var m = c[j].match(/^analytics-event-(.+?)(?:=|--)(.+)$/);
        if (m) m[1] == 'name' ? (e.name = m[2].replace(/\+/g, ' ')) : (e.props[m[1]] = m[2].replace(/\+/g, ' '));
      }
      if (e.name) return e;
    }
  }

  function click(ev) {
    if (ev.type == 'auxclick' && ev.button != 1) return;
    var a = ev.target.closest && ev.target.closest('a[href]');
    var custom = classEvent(ev.target);
    if (custom) {
      if (a) custom.props.url = a.href;
      return send(custom.name, custom);
    }
    if (!a) return;
    var href = a.href.split('?')[0];
    if (has('outbound-links') && a.host && a.host != l.host) send('Outbound Link: Click', { props: { url: a.href } });
    else if (files && files.indexOf(href.split('.').pop()) >= 0) send('File Download', { props: { url: href } });
  }

  w.analytics = function (name, o) { send(name, o); };
  for (var i = 0; i < queued.length; i++) send.apply(null, queued[i]);
  d.addEventListener('click', click);
  d.addEventListener('auxclick', click);
  var hp = w.history;
  ['pushState', 'replaceState'].forEach(function (f) {
    var orig = hp[f];
    hp[f] = function () { orig.apply(this, arguments); page(); };
  });
  w.addEventListener(hash ? 'hashchange' : 'popstate', page);
  if (hash) w.addEventListener('popstate', page);
  page();
})();
