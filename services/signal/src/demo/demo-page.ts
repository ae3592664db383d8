/**
 * The embedded demo page at /demo: loads Datafly.js from this server exactly as a customer's site loads it
 * from its data subdomain, asks for consent, and sends page/track/identify/purchase events. The numbers
 * under the buttons come from /demo/stats (received by the gateway, delivered to the local vendor sink).
 */
export function demoPage(options: { readonly pipelineKey: string }): string {
  const key = escapeAttribute(options.pipelineKey);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Signal demo shop</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
  main { max-width: 760px; margin: 0 auto; padding: 32px 20px; }
  h1 { font-size: 24px; margin: 0 0 4px; }
  p.lead { color: #556; margin: 0 0 24px; }
  .buttons { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 24px; }
  button { font: inherit; padding: 10px 16px; border-radius: 8px; border: 1px solid #c9ced8; background: #fff; cursor: pointer; }
  button.primary { background: #2456d6; color: #fff; border-color: #2456d6; }
  .stats { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; margin-bottom: 24px; }
  .stat { background: #fff; border: 1px solid #e1e4ea; border-radius: 10px; padding: 14px; }
  .stat b { display: block; font-size: 28px; }
  pre { background: #0f1420; color: #d6deeb; padding: 14px; border-radius: 10px; overflow: auto; font-size: 12px; max-height: 320px; }
  #banner { position: fixed; left: 0; right: 0; bottom: 0; background: #1d2330; color: #fff; padding: 16px 20px; display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
  #banner[hidden] { display: none; }
  #banner span { flex: 1 1 300px; }
</style>
</head>
<body>
<main>
  <h1>Signal demo shop</h1>
  <p class="lead">Events from this page go to the Ingestion Gateway, through the Org Data Layer, and on to a local HTTPS
  "vendor" (its own CA, trusted explicitly). Email addresses leave hashed.</p>
  <div class="buttons">
    <button id="btn-page">Page view</button>
    <button id="btn-track">Add to cart</button>
    <button id="btn-identify">Identify</button>
    <button id="btn-purchase" class="primary">Purchase</button>
    <button id="btn-consent">Consent settings</button>
  </div>
  <div class="stats">
    <div class="stat">received<b id="stat-received">0</b></div>
    <div class="stat">delivered<b id="stat-delivered">0</b></div>
    <div class="stat">failed<b id="stat-failed">0</b></div>
  </div>
  <p>Last payload the vendor received:</p>
  <pre id="last">nothing yet</pre>
</main>
<div id="banner" hidden>
  <span>We use first-party analytics and marketing measurement. Choose what you allow.</span>
  <button id="consent-essential">Essential only</button>
  <button id="consent-all" class="primary">Accept all</button>
</div>
<script src="/d.js" data-pipeline-key="${key}" data-auto-page="true" async></script>
<script>
  (function () {
    var w = window;
    w._df = w._df || [];
    function df() { w._df.push(Array.prototype.slice.call(arguments)); }
    var banner = document.getElementById('banner');
    var stored = localStorage.getItem('demo-consent');
    function applyConsent(all) {
      localStorage.setItem('demo-consent', all ? 'all' : 'essential');
      df('consent', { essential: true, functional: all, analytics: all, marketing: all, personalization: all });
      banner.hidden = true;
    }
    if (stored) { applyConsent(stored === 'all'); } else { banner.hidden = false; }
    document.getElementById('consent-all').onclick = function () { applyConsent(true); };
    document.getElementById('consent-essential').onclick = function () { applyConsent(false); };
    document.getElementById('btn-consent').onclick = function () { banner.hidden = false; };
    document.getElementById('btn-page').onclick = function () { df('page'); };
    document.getElementById('btn-track').onclick = function () {
      df('track', 'add_to_cart', { currency: 'EUR', value: 19.9, items: [{ item_id: 'sku-42', item_name: 'Mug', price: 19.9, quantity: 1 }] });
    };
    document.getElementById('btn-identify').onclick = function () {
      df('identify', 'demo-user-1', { email: 'Jane.Doe@Example.com', first_name: 'Jane', country: 'DE' });
    };
    document.getElementById('btn-purchase').onclick = function () {
      df('track', 'purchase', { transaction_id: 'T' + Date.now(), currency: 'EUR', value: 59.7,
        items: [{ item_id: 'sku-42', item_name: 'Mug', price: 19.9, quantity: 3 }] });
    };
    function refresh() {
      fetch('/demo/stats', { cache: 'no-store' }).then(function (r) { return r.json(); }).then(function (s) {
        document.getElementById('stat-received').textContent = s.received;
        document.getElementById('stat-delivered').textContent = s.delivered;
        document.getElementById('stat-failed').textContent = s.failed;
        if (s.last) document.getElementById('last').textContent = JSON.stringify(s.last, null, 2);
      }).catch(function () {});
    }
    setInterval(refresh, 1000);
    refresh();
  })();
</script>
</body>
</html>
`;
}

function escapeAttribute(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
