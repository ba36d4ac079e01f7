//! The service-provider accounts SmartCA knows. Like VNPT, which registers a callback URL per SP
//! account, each `sp_id` has its own `sp_password` and optional webhook URL, and a finished
//! request is pushed to the URL of the account that asked for it. The account from
//! `MockConfig::smartca_sp_id` is the default one the single-account setters address.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

const MAX_SP_ID_LEN: usize = 128;
const MAX_PASSWORD_LEN: usize = 256;

/// A SmartCA service-provider account: what callers present as `sp_id`/`sp_password`, and where
/// its finished requests are pushed (none: callers poll).
#[derive(Clone, PartialEq, Eq)]
pub struct SmartCaAccount {
    pub sp_id: String,
    pub sp_password: String,
    pub webhook_url: Option<String>,
}

impl SmartCaAccount {
    pub fn new(
        sp_id: impl Into<String>,
        sp_password: impl Into<String>,
        webhook_url: Option<String>,
    ) -> Self {
        Self {
            sp_id: sp_id.into(),
            sp_password: sp_password.into(),
            webhook_url,
        }
    }

    /// Checks the shapes: a printable `sp_id` without spaces or `:` (at most 128 bytes), a
    /// non-empty password (at most 256 bytes) and, if set, an absolute http(s) webhook URL.
    pub fn validate(&self) -> Result<(), SmartCaAccountError> {
        let id_ok = !self.sp_id.is_empty()
            && self.sp_id.len() <= MAX_SP_ID_LEN
            && self.sp_id.chars().all(|c| c.is_ascii_graphic() && c != ':');
        if !id_ok {
            return Err(SmartCaAccountError::InvalidSpId(self.sp_id.clone()));
        }
        let password_ok = !self.sp_password.is_empty()
            && self.sp_password.len() <= MAX_PASSWORD_LEN
            && !self.sp_password.chars().any(char::is_control);
        if !password_ok {
            return Err(SmartCaAccountError::InvalidPassword(self.sp_id.clone()));
        }
        if let Some(url) = &self.webhook_url {
            check_url(url)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for SmartCaAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartCaAccount")
            .field("sp_id", &self.sp_id)
            .field("sp_password", &"<redacted>")
            .field("webhook_url", &self.webhook_url)
            .finish()
    }
}

/// `SP_ID:PASSWORD` or `SP_ID:PASSWORD:WEBHOOK_URL` (so the password cannot hold `:`), validated
/// as [`SmartCaAccount::validate`] does: the form the `--smartca-account` flag takes.
impl FromStr for SmartCaAccount {
    type Err = SmartCaAccountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(3, ':');
        let sp_id = parts.next().unwrap_or_default();
        let Some(password) = parts.next() else {
            return Err(SmartCaAccountError::Malformed);
        };
        let webhook_url = parts.next().map(str::to_owned);
        let account = Self::new(sp_id, password, webhook_url);
        account.validate()?;
        Ok(account)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SmartCaAccountError {
    #[error("a SmartCA account is written SP_ID:PASSWORD[:WEBHOOK_URL]")]
    Malformed,
    #[error("sp_id {0:?} must be 1 to 128 printable ASCII characters without spaces or ':'")]
    InvalidSpId(String),
    #[error("the sp_password of {0:?} must be 1 to 256 characters without control characters")]
    InvalidPassword(String),
    #[error("webhook URL {0:?} is not an absolute http or https URL")]
    InvalidWebhookUrl(String),
    #[error("SmartCA account {0:?} is configured twice")]
    Duplicate(String),
    #[error("no SmartCA account {0:?}")]
    Unknown(String),
}

fn check_url(url: &str) -> Result<(), SmartCaAccountError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        _ => Err(SmartCaAccountError::InvalidWebhookUrl(url.to_owned())),
    }
}

/// Every account, by `sp_id`.
pub(crate) struct Accounts {
    default_sp_id: String,
    by_id: RwLock<HashMap<String, SmartCaAccount>>,
}

impl Accounts {
    /// The default account is taken as configured (the single-account setup never validated
    /// it); `extra` accounts are validated and must not repeat an `sp_id`.
    pub fn new(
        default: SmartCaAccount,
        extra: Vec<SmartCaAccount>,
    ) -> Result<Self, SmartCaAccountError> {
        let mut by_id = HashMap::with_capacity(extra.len() + 1);
        let default_sp_id = default.sp_id.clone();
        by_id.insert(default.sp_id.clone(), default);
        for account in extra {
            account.validate()?;
            let sp_id = account.sp_id.clone();
            if by_id.insert(sp_id.clone(), account).is_some() {
                return Err(SmartCaAccountError::Duplicate(sp_id));
            }
        }
        Ok(Self {
            default_sp_id,
            by_id: RwLock::new(by_id),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, SmartCaAccount>> {
        self.by_id.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, SmartCaAccount>> {
        self.by_id.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn default_sp_id(&self) -> &str {
        &self.default_sp_id
    }

    /// The account these credentials belong to; `None` for an unknown `sp_id` and for a wrong
    /// password alike, so callers answer both the same way.
    pub fn authenticate(&self, sp_id: Option<&str>, sp_password: Option<&str>) -> Option<String> {
        let (sp_id, sp_password) = (sp_id?, sp_password?);
        let accounts = self.read();
        let account = accounts.get(sp_id)?;
        (account.sp_password == sp_password).then(|| sp_id.to_owned())
    }

    /// Registers an account, or replaces the password and webhook URL of an existing one.
    pub fn upsert(&self, account: SmartCaAccount) -> Result<(), SmartCaAccountError> {
        account.validate()?;
        self.write().insert(account.sp_id.clone(), account);
        Ok(())
    }

    /// Sets or clears the default account's webhook URL, unchecked as it always was.
    pub fn set_default_webhook_url(&self, url: Option<String>) {
        let mut accounts = self.write();
        if let Some(account) = accounts.get_mut(&self.default_sp_id) {
            account.webhook_url = url;
        }
    }

    /// Sets or clears one account's webhook URL.
    pub fn set_webhook_url(
        &self,
        sp_id: &str,
        url: Option<String>,
    ) -> Result<(), SmartCaAccountError> {
        if let Some(url) = &url {
            check_url(url)?;
        }
        let mut accounts = self.write();
        let account = accounts
            .get_mut(sp_id)
            .ok_or_else(|| SmartCaAccountError::Unknown(sp_id.to_owned()))?;
        account.webhook_url = url;
        Ok(())
    }

    /// Where `sp_id`'s requests are pushed, if anywhere.
    pub fn webhook_url(&self, sp_id: &str) -> Option<String> {
        self.read().get(sp_id)?.webhook_url.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        let default = SmartCaAccount::new("kyso-dev", "kyso-dev-secret", None);
        let second = SmartCaAccount::new("kyso-dev-2", "second-secret", None);
        Accounts::new(default, vec![second]).expect("valid accounts")
    }

    #[test]
    fn each_account_is_accepted_only_with_its_own_password() {
        let a = accounts();
        let ok = |id, pw| a.authenticate(Some(id), Some(pw));
        assert_eq!(
            ok("kyso-dev", "kyso-dev-secret").as_deref(),
            Some("kyso-dev")
        );
        assert_eq!(
            ok("kyso-dev-2", "second-secret").as_deref(),
            Some("kyso-dev-2")
        );
        assert_eq!(ok("kyso-dev-2", "kyso-dev-secret"), None);
        assert_eq!(ok("kyso-dev", "second-secret"), None);
        assert_eq!(ok("nobody", "kyso-dev-secret"), None);
        assert_eq!(a.authenticate(Some("kyso-dev"), None), None);
    }

    #[test]
    fn the_flag_form_parses_with_and_without_a_webhook() {
        let plain: SmartCaAccount = "sp-2:pw".parse().expect("parses");
        assert_eq!(plain, SmartCaAccount::new("sp-2", "pw", None));
        let hooked: SmartCaAccount = "sp-3:pw:http://127.0.0.1:8080/callbacks/x"
            .parse()
            .expect("parses");
        assert_eq!(
            hooked.webhook_url.as_deref(),
            Some("http://127.0.0.1:8080/callbacks/x")
        );
        for bad in [
            "sp-only",
            ":pw",
            "sp:",
            "sp 2:pw",
            "sp:pw:ftp://x/",
            "sp:pw:not a url",
        ] {
            assert!(bad.parse::<SmartCaAccount>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_repeated_or_invalid_extra_account_is_refused() {
        let default = SmartCaAccount::new("kyso-dev", "kyso-dev-secret", None);
        let again = SmartCaAccount::new("kyso-dev", "other", None);
        assert!(matches!(
            Accounts::new(default.clone(), vec![again]),
            Err(SmartCaAccountError::Duplicate(_))
        ));
        let bad_url = SmartCaAccount::new("sp-2", "pw", Some("/callbacks/x".into()));
        assert!(Accounts::new(default, vec![bad_url]).is_err());
    }

    #[test]
    fn webhook_urls_are_per_account() {
        let a = accounts();
        a.set_default_webhook_url(Some("http://gw/one".into()));
        a.set_webhook_url("kyso-dev-2", Some("http://gw/two".into()))
            .expect("known account");
        assert_eq!(a.webhook_url("kyso-dev").as_deref(), Some("http://gw/one"));
        assert_eq!(
            a.webhook_url("kyso-dev-2").as_deref(),
            Some("http://gw/two")
        );
        assert!(a.set_webhook_url("nobody", None).is_err());
        assert!(a
            .set_webhook_url("kyso-dev-2", Some("gw/two".into()))
            .is_err());
    }
}
