//! What the adapter keeps between `start` and `status` (persisted by the engine as opaque
//! JSON): the MSSP's transaction id, and the final answer when the signature call itself
//! brought it.

use base64::prelude::{Engine as _, BASE64_STANDARD};
use serde::{Deserialize, Serialize};

use super::call::failure;
use crate::providers::{CertBundle, Outcome};
use crate::verify::Scheme;

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct State {
    #[serde(default)]
    pub mssp_trans_id: Option<String>,
    /// The final answer when the signature call itself brought it (synch mode, or a carrier
    /// that answers at once): `status` returns it without calling the MSSP again.
    #[serde(default)]
    pub result: Option<Finished>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Finished {
    Signed {
        signature: String,
        scheme: Scheme,
        certificate: Option<CertBundle>,
    },
    SignedCms {
        cms: String,
        certificate: Option<CertBundle>,
    },
    Rejected {
        provider_code: Option<String>,
    },
    Expired {
        provider_code: Option<String>,
    },
}

impl Finished {
    pub fn into_outcome(self) -> Outcome {
        match self {
            Finished::Signed {
                signature,
                scheme,
                certificate,
            } => match BASE64_STANDARD.decode(signature) {
                Ok(signature) => Outcome::Signed {
                    signature,
                    scheme,
                    certificate,
                },
                Err(_) => Outcome::Failed(failure(None, "stored signature is not base64")),
            },
            Finished::SignedCms { cms, certificate } => match BASE64_STANDARD.decode(cms) {
                Ok(cms) => Outcome::SignedCms { cms, certificate },
                Err(_) => Outcome::Failed(failure(None, "stored CMS is not base64")),
            },
            Finished::Rejected { provider_code } => Outcome::Rejected { provider_code },
            Finished::Expired { provider_code } => Outcome::Expired { provider_code },
        }
    }
}
