//! SmartCA service-provider accounts: each with its own password and webhook URL, every
//! finished request pushed to the URL of the account that asked for it.

use mock_carriers::{MockCarriers, MockConfig, SmartCaAccount, SmartCaAccountError};
use serde_json::{json, Value};

use crate::helpers::*;

const SECOND_ID: &str = "kyso-dev-2";
const SECOND_PASSWORD: &str = "kyso-dev-2-secret";

fn sign_as(sp_id: &str, sp_password: &str, user_id: &str, transaction_id: &str) -> Value {
    let mut body = sign_body(user_id, transaction_id, &digest_of(transaction_id));
    body["sp_id"] = json!(sp_id);
    body["sp_password"] = json!(sp_password);
    body
}

async fn spawn_with_second_account(webhook_url: Option<String>) -> TestMock {
    spawn_mock_with(|c| {
        c.smartca_accounts = vec![SmartCaAccount::new(SECOND_ID, SECOND_PASSWORD, webhook_url)];
    })
    .await
}

/// A mock with the second account whose default account pushes to `{hooks}/default`, and the
/// second account to `{hooks}/{name}` when named.
async fn hooked(second: Option<&str>) -> (TestMock, Received) {
    let (hooks, seen) = webhook_listener().await;
    let t = spawn_with_second_account(second.map(|name| format!("{hooks}/{name}"))).await;
    t.mock
        .set_smartca_webhook_url(Some(format!("{hooks}/default")));
    (t, seen)
}

#[tokio::test]
async fn each_account_s_requests_are_announced_to_its_own_webhook_url() {
    let (t, seen) = hooked(Some("second")).await;

    let second = sign_as(SECOND_ID, SECOND_PASSWORD, "001099012345", "second-tx");
    let accepted = t.post_ok("/sca/sp769/v1/signatures/sign", &second).await;
    assert_eq!(accepted["status_code"], 200);
    let first = sign_as(SP_ID, SP_PASSWORD, "001099012346", "default-tx");
    let accepted = t.post_ok("/sca/sp769/v1/signatures/sign", &first).await;
    assert_eq!(accepted["status_code"], 200);

    let mut got = received(&seen, 2).await;
    assert_eq!(got.len(), 2, "one webhook per request: {got:?}");
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let (default_path, default_hook) = &got[0];
    let (second_path, second_hook) = &got[1];
    assert_eq!(second_path, "second");
    assert_eq!(second_hook["transaction_id"], "second-tx");
    assert_eq!(second_hook["sp_id"], SECOND_ID);
    assert_eq!(second_hook["status_code"], 200);
    assert!(second_hook["signed_files"][0]["signature_value"].is_string());
    assert_eq!(default_path, "default");
    assert_eq!(default_hook["transaction_id"], "default-tx");
    assert_eq!(default_hook["sp_id"], SP_ID);
}

#[tokio::test]
async fn an_account_without_a_webhook_url_is_not_pushed_to_another_account_s() {
    let (t, seen) = hooked(None).await;
    let second = sign_as(SECOND_ID, SECOND_PASSWORD, "001099012345", "quiet-tx");
    t.post_ok("/sca/sp769/v1/signatures/sign", &second).await;
    let done = t.wait_final("quiet-tx").await;
    assert_eq!(done["status_code"], 200, "polling still finds it");
    // The decision is final, so any push it made was already taken to be sent.
    assert_eq!(t.pushes_settled().await, (0, 0), "no push sent");
    assert!(seen.lock().expect("lock").is_empty(), "no webhook expected");
}

#[tokio::test]
async fn a_second_account_is_refused_with_any_password_but_its_own() {
    let t = spawn_with_second_account(None).await;
    for password in [SP_PASSWORD, "wrong", ""] {
        let body = sign_as(SECOND_ID, password, "001099012345", "refused-tx");
        let resp = t.post_ok("/sca/sp769/v1/signatures/sign", &body).await;
        assert_eq!(resp["status_code"], 401, "password {password:?}");
        assert!(resp["data"].is_null());
    }
    let certs = json!({"sp_id": SECOND_ID, "sp_password": "wrong", "user_id": "001099012345"});
    let resp = t
        .post_ok("/sca/sp769/v1/credentials/get_certificate", &certs)
        .await;
    assert_eq!(resp["status_code"], 401);
    assert_eq!(t.get_json("/admin/stats").await["prompts"], 0);

    let certs = json!({"sp_id": SECOND_ID, "sp_password": SECOND_PASSWORD,
                       "user_id": "001099012345"});
    let resp = t
        .post_ok("/sca/sp769/v1/credentials/get_certificate", &certs)
        .await;
    assert_eq!(resp["status_code"], 200);
    let body = sign_as(SECOND_ID, SECOND_PASSWORD, "001099012345", "accepted-tx");
    t.post_ok("/sca/sp769/v1/signatures/sign", &body).await;
    let wrong = json!({"sp_id": SECOND_ID, "sp_password": SP_PASSWORD});
    let resp = t
        .post_ok("/sca/sp769/v1/signatures/sign/accepted-tx/status", &wrong)
        .await;
    assert_eq!(resp["status_code"], 401);
}

#[tokio::test]
async fn the_default_account_works_as_before_beside_a_second_one() {
    let (t, seen) = hooked(Some("second")).await;
    let certs = t.certificates("001099012345").await;
    assert_eq!(certs["status_code"], 200);
    let accepted = t
        .sign("001099012345", "default-only", &digest_of("a"))
        .await;
    assert_eq!(accepted["status_code"], 200);
    let done = t.wait_final("default-only").await;
    assert_eq!(done["status_code"], 200);
    assert!(done["data"]["signatures"].is_array());
    let got = received(&seen, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "default");
    assert_eq!(got[0].1["sp_id"], SP_ID);
    let mut wrong = sign_body("001099012345", "default-wrong", &digest_of("b"));
    wrong["sp_password"] = json!(SECOND_PASSWORD);
    let resp = t.post_ok("/sca/sp769/v1/signatures/sign", &wrong).await;
    assert_eq!(resp["status_code"], 401);
}

#[tokio::test]
async fn accounts_added_at_run_time_push_to_the_url_set_for_them() {
    let (hooks, seen) = webhook_listener().await;
    let t = spawn_mock().await;
    let third = SmartCaAccount::new("kyso-dev-3", "third-secret", None);
    t.mock.add_smartca_account(third).expect("valid account");
    t.mock
        .set_smartca_webhook_url_for("kyso-dev-3", Some(format!("{hooks}/third")))
        .expect("known account");
    let body = sign_as("kyso-dev-3", "third-secret", "001099012345", "third-tx");
    let accepted = t.post_ok("/sca/sp769/v1/signatures/sign", &body).await;
    assert_eq!(accepted["status_code"], 200);
    let got = received(&seen, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "third");
    assert_eq!(got[0].1["transaction_id"], "third-tx");
    assert_eq!(got[0].1["sp_id"], "kyso-dev-3");

    assert!(matches!(
        t.mock.set_smartca_webhook_url_for("nobody", None),
        Err(SmartCaAccountError::Unknown(_))
    ));
    assert!(matches!(
        t.mock
            .set_smartca_webhook_url_for("kyso-dev-3", Some("callbacks/x".into())),
        Err(SmartCaAccountError::InvalidWebhookUrl(_))
    ));
    let bad_id = SmartCaAccount::new("has space", "pw", None);
    assert!(matches!(
        t.mock.add_smartca_account(bad_id),
        Err(SmartCaAccountError::InvalidSpId(_))
    ));
}

#[tokio::test]
async fn another_account_cannot_reuse_a_transaction_id() {
    let t = spawn_with_second_account(None).await;
    let first = sign_as(SP_ID, SP_PASSWORD, "001099012345", "shared-tx");
    let accepted = t.post_ok("/sca/sp769/v1/signatures/sign", &first).await;
    assert_eq!(accepted["status_code"], 200);
    let again = sign_as(SECOND_ID, SECOND_PASSWORD, "001099012345", "shared-tx");
    let resp = t.post_ok("/sca/sp769/v1/signatures/sign", &again).await;
    assert_eq!(resp["status_code"], 400);
    let repeat = t.post_ok("/sca/sp769/v1/signatures/sign", &first).await;
    assert_eq!(repeat["data"], accepted["data"], "the owner may repeat it");
    assert_eq!(t.get_json("/admin/stats").await["prompts"], 1);
}

#[test]
fn a_repeated_or_malformed_configured_account_stops_the_mock() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = |accounts: Vec<SmartCaAccount>| MockConfig {
        state_dir: dir.path().to_path_buf(),
        smartca_accounts: accounts,
        ..MockConfig::default()
    };
    let refusal = |accounts| {
        let err = MockCarriers::new(config(accounts)).err().expect("refused");
        format!("{err:#}")
    };
    let twice = vec![SmartCaAccount::new(SP_ID, "other", None)];
    assert!(refusal(twice).contains("configured twice"));
    let bad_url = vec![SmartCaAccount::new(
        SECOND_ID,
        "pw",
        Some("ftp://x/".into()),
    )];
    assert!(refusal(bad_url).contains("is not an absolute http"));
}
