//! The state every handler shares: configuration, the PKI, the request book, the fault
//! counters, the webhook sender and the MSSP's own state — plus the two cross-cutting steps every front end needs:
//! settling time-driven outcomes (and announcing what finished) and producing the signatures
//! a behaviour calls for.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::behaviour::{Faults, SignaturePlan};
use crate::pki::{PkiError, Provider, SignerCredential};
use crate::requests::{SignRequest, Store};
use crate::webhook::WebhookSender;
use crate::{pki::Pki, smartca};

pub(crate) struct Shared {
    pub pki: Pki,
    pub store: Store,
    pub faults: Faults,
    pub webhooks: WebhookSender,
    pub smartca: smartca::Accounts,
    pub mssp: crate::mssp::MsspState,
    /// OCSP and CRL requests served, for `/admin/stats`.
    pub fetches: crate::revocation::Fetches,
}

impl Shared {
    /// Applies due outcomes and pushes a webhook for each request that just finished.
    pub fn settle(&self) {
        for req in self.store.settle_due() {
            self.announce(&req);
        }
    }

    /// Tells the provider's caller (by push, where configured) that `req` finished.
    pub fn announce(&self, req: &SignRequest) {
        match req.provider {
            Provider::SmartCa => smartca::announce(self, req),
            Provider::ViettelSim | Provider::VnptSim | Provider::MobifoneSim => {
                crate::mssp::announce(self, req)
            }
        }
    }

    /// The signer's credential; provisions it on a blocking thread the first time.
    pub async fn credential(
        self: &Arc<Self>,
        provider: Provider,
        signer: &str,
    ) -> Result<Arc<SignerCredential>, PkiError> {
        if let Some(cred) = self.pki.cached(provider, signer) {
            return Ok(cred);
        }
        let shared = self.clone();
        let signer = signer.to_owned();
        tokio::task::spawn_blocking(move || shared.pki.signer(provider, &signer))
            .await
            .map_err(|_| PkiError::Crypto("provisioning task failed"))?
    }
}

/// The signature the phone will send back for `digest`, shaped by the signer's behaviour.
pub(crate) fn signature_for(
    cred: &SignerCredential,
    plan: SignaturePlan,
    digest: &[u8; 32],
) -> Result<Vec<u8>, PkiError> {
    match plan {
        SignaturePlan::Correct => cred.sign_digest(digest),
        SignaturePlan::OtherDigest => cred.sign_digest(&Sha256::digest(digest).into()),
        SignaturePlan::Corrupted => {
            let mut sig = cred.sign_digest(digest)?;
            let len = sig.len();
            for i in [len / 4, len / 2, len - 1] {
                if let Some(b) = sig.get_mut(i) {
                    *b ^= 0xA5;
                }
            }
            Ok(sig)
        }
    }
}

/// Runs [`Shared::settle`] every 100 ms until the state is dropped, so pushes for requests
/// nobody polls still go out on time.
pub(crate) fn spawn_ticker(shared: Weak<Shared>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(shared) = shared.upgrade() else {
                break;
            };
            shared.settle();
        }
    });
}
