//! The operating system's CSPRNG: the one place that draws from it, and the one error for
//! when it fails (which each outer layer reports as an internal failure).

use rand::rngs::SysRng;
use rand::TryRng;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomSourceFailed(String);

/// Fills `buffer` from the OS CSPRNG.
pub(super) fn fill(buffer: &mut [u8]) -> Result<(), RandomSourceFailed> {
    SysRng
        .try_fill_bytes(buffer)
        .map_err(|err| RandomSourceFailed(err.to_string()))
}
