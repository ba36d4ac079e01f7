//! Domain types: what a signature session is, which states it moves through, and the rules
//! that hold whatever the transport or the storage. Nothing here knows HTTP or SQL.

mod event;
mod request;
mod session;
mod text;

pub use event::{render_frame, Event, Publish};
pub use request::{
    normalize_msisdn, validate_signer, Format, Limits, NewSignature, Purpose, RequestError,
    SignatureInput, SignerRule,
};
pub use session::{
    verification_code, ErrorCode, Session, SessionError, SessionId, SignResult, Status,
};
