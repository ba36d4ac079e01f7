//! The demo portal page (`GET /demo`, dev stack only): a stand-in for a portal's registration
//! screen that starts a signature with the API key the user pastes, opens the events WebSocket
//! with a browser ticket, and shows the identity the signature yields.

use axum::response::Html;
use axum::routing::get;
use axum::Router;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/demo", get(|| async { Html(PAGE) }))
}

const PAGE: &str = r##"<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>kyso demo portal</title>
<style>
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}
label{display:block;margin:.5rem 0}input,select{width:100%;padding:.3rem}
pre{background:#f4f4f4;padding:.6rem;white-space:pre-wrap;max-height:24rem;overflow:auto}
.code{font-size:2rem;letter-spacing:.3rem}
</style></head><body>
<h1>Đăng ký tài khoản — demo portal</h1>
<p>The page a portal would show. It calls kyso's API from the browser with the dev API key.</p>
<label>API key <input id="key" autocomplete="off"></label>
<label>Provider <input id="provider" value="vnpt-smartca" list="providers"></label>
<datalist id="providers"><option>vnpt-smartca</option><option>viettel-sim</option>
<option>vnpt-sim</option><option>mobifone-sim</option></datalist>
<label>Signer (CCCD, MST or MSISDN) <input id="signer" value="001099012999"></label>
<button id="go">Sign with my phone</button>
<p>Verification code: <span class="code" id="code">----</span>
 — check that your phone shows the same code.</p>
<h2>Identity</h2><pre id="identity">–</pre>
<h2>Events</h2><pre id="log"></pre>
<script>
const $ = id => document.getElementById(id);
const log = m => { $("log").textContent = m + "\n" + $("log").textContent; };
const headers = () => ({"Authorization": "Bearer " + $("key").value.trim(),
                        "Content-Type": "application/json"});
let watching = null;
async function watch(id) {
  const t = await fetch("/v1/events/tickets", {method: "POST", headers: headers()});
  if (!t.ok) { log("ticket: HTTP " + t.status); return; }
  const {ticket} = await t.json();
  const ws = new WebSocket(location.origin.replace("http", "ws") +
      "/v1/events?session=" + encodeURIComponent(id) + "&ticket=" + encodeURIComponent(ticket));
  ws.onmessage = ev => {
    const e = JSON.parse(ev.data), s = e.session;
    log("#" + e.seq + " " + s.status + (s.error ? " (" + s.error.code + ")" : ""));
    if (s.result) $("identity").textContent = JSON.stringify(s.result.identity, null, 2);
    if (!["pending", "awaiting_user"].includes(s.status)) ws.close();
  };
  watching = ws;
}
$("go").onclick = async () => {
  if (watching) watching.close();
  const bytes = new TextEncoder().encode("demo " + new Date().toISOString());
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const body = {provider: $("provider").value.trim(), signer: $("signer").value.trim(),
                purpose: "register", digest: btoa(String.fromCharCode(...digest))};
  const r = await fetch("/v1/signatures", {method: "POST", headers: headers(), body: JSON.stringify(body)});
  const s = await r.json();
  if (!r.ok) { log("error: " + s.error.code + " — " + s.error.message); return; }
  $("code").textContent = s.verification_code;
  $("identity").textContent = "waiting for the phone…";
  log("created " + s.id);
  watch(s.id);
};
</script></body></html>"##;
