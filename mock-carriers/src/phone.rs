//! The virtual phone: `GET /phone/{signer}` is a self-contained HTML page (no external assets)
//! listing the signer's pending prompts — provider, transaction id, the text the phone shows
//! (which carries kyso's verification code), document ids, creation time — each with a PIN box
//! and Approve/Reject buttons that call the admin API. The list is rendered here only, escaped,
//! and the page's small script refreshes it by fetching `?fragment=1` every two seconds,
//! keeping whatever PIN was being typed.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::requests::{RequestStatus, SignRequest};
use crate::state::Shared;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new().route("/phone/{signer}", get(page))
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    fragment: Option<String>,
}

async fn page(
    State(shared): State<Arc<Shared>>,
    Path(signer): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    shared.settle();
    let pending = shared
        .store
        .list(Some(&signer), Some(RequestStatus::Pending));
    let list = render_list(&pending);
    if q.fragment.is_some() {
        return Html(list).into_response();
    }
    Html(render_page(&signer, &list)).into_response()
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn render_list(pending: &[SignRequest]) -> String {
    if pending.is_empty() {
        return "<p class=\"empty\">No pending requests.</p>".to_owned();
    }
    let mut html = String::new();
    for req in pending {
        let docs: Vec<String> = req.documents.iter().map(|d| escape(&d.doc_id)).collect();
        html.push_str(&format!(
            concat!(
                "<section class=\"req\" data-id=\"{id}\">",
                "<div class=\"meta\">{provider} · {created}</div>",
                "<p class=\"text\">{text}</p>",
                "<dl><dt>Transaction</dt><dd>{tid}</dd><dt>Documents</dt><dd>{docs}</dd></dl>",
                "<input class=\"pin\" type=\"password\" inputmode=\"numeric\" maxlength=\"8\" ",
                "placeholder=\"PIN\" aria-label=\"PIN\" data-id=\"{id}\">",
                "<button class=\"approve\" data-id=\"{id}\">Approve</button>",
                "<button class=\"reject\" data-id=\"{id}\">Reject</button>",
                "</section>"
            ),
            id = escape(&req.id),
            provider = escape(req.provider.id()),
            created = escape(&req.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            text = escape(&req.display_text),
            tid = escape(&req.transaction_id),
            docs = if docs.is_empty() {
                "—".to_owned()
            } else {
                docs.join(", ")
            },
        ));
    }
    html
}

fn render_page(signer: &str, list: &str) -> String {
    PAGE.replace("{{SIGNER}}", &escape(signer))
        .replace("{{LIST}}", list)
}

const PAGE: &str = r#"<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Virtual phone · {{SIGNER}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:28rem;margin:1rem auto;padding:0 1rem;background:#f4f4f6}
h1{font-size:1.1rem}.req{background:#fff;border-radius:.8rem;padding:1rem;margin:1rem 0;box-shadow:0 1px 3px #0002}
.meta{color:#666;font-size:.8rem}.text{font-size:1.1rem;font-weight:600}dl{font-size:.85rem}
dt{color:#666}dd{margin:0 0 .4rem 0;word-break:break-all}.pin{width:6rem;padding:.4rem}
button{padding:.45rem .9rem;margin-left:.4rem;border:0;border-radius:.4rem;color:#fff}
.approve{background:#1a7f37}.reject{background:#b42318}.empty{color:#666}#msg{color:#b42318;min-height:1.2em}
</style></head>
<body>
<h1>Virtual phone — <span>{{SIGNER}}</span></h1>
<div id="msg"></div>
<div id="list">{{LIST}}</div>
<script>
(function(){
  var list=document.getElementById('list'), msg=document.getElementById('msg');
  function pins(){var v={};list.querySelectorAll('input.pin').forEach(function(i){v[i.dataset.id]=i.value;});return v;}
  function refresh(){
    fetch(location.pathname+'?fragment=1',{cache:'no-store'}).then(function(r){return r.text();}).then(function(html){
      if(html===list.dataset.last){return;}
      var keep=pins(), focused=document.activeElement&&document.activeElement.dataset?document.activeElement.dataset.id:null;
      list.innerHTML=html; list.dataset.last=html;
      list.querySelectorAll('input.pin').forEach(function(i){if(keep[i.dataset.id]){i.value=keep[i.dataset.id];}if(i.dataset.id===focused){i.focus();}});
    }).catch(function(){});
  }
  list.addEventListener('click',function(e){
    var b=e.target; if(b.tagName!=='BUTTON'){return;}
    var id=b.dataset.id, approve=b.classList.contains('approve'), body={};
    if(approve){var p=list.querySelector('input.pin[data-id="'+CSS.escape(id)+'"]');if(p&&p.value){body.pin=p.value;}}
    fetch('/admin/requests/'+encodeURIComponent(id)+'/'+(approve?'approve':'reject'),
      {method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify(body)})
      .then(function(r){return r.json().then(function(j){msg.textContent=r.ok?'':(j.error&&j.error.message)||'failed';});})
      .catch(function(){msg.textContent='network error';}).then(refresh);
  });
  list.dataset.last=list.innerHTML; setInterval(refresh,2000);
})();
</script>
</body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_request_text_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn the_signer_in_the_page_is_escaped() {
        let html = render_page("<b>", "");
        assert!(html.contains("&lt;b&gt;"));
        assert!(!html.contains("<b>"));
    }
}
