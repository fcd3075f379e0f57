//! Loading a miner's verified store and the truth-side inputs of a scoring step, with the
//! failure classification both Day1 and ERA5 use.

use crate::context::{MinerDeadline, StepContext, data_failure};
use crate::data::DataError;
use crate::data::MinerStore;
use crate::wrapper::StepFailure;
use chrono::{DateTime, Utc};
use wx_data::manifest::FrozenManifest;
use wx_model::{Blame, ErrorKind, MinerUid};
use wx_store::Claim;

/// Whether a read error of one variable is the store's fault as a whole (stop the step) rather
/// than that variable's (score it 0).
pub fn fails_the_store(e: &DataError) -> bool {
    matches!(
        e.kind,
        ErrorKind::Integrity
            | ErrorKind::Network
            | ErrorKind::Timeout
            | ErrorKind::Unauthorized
            | ErrorKind::Forbidden
            | ErrorKind::TooLarge
    )
}

/// Opens the claimed miner's store with the manifest frozen at verification; the reads count
/// against the step's `deadline`.
pub async fn open_verified_miner(
    ctx: &StepContext,
    claim: &Claim,
    init: DateTime<Utc>,
    deadline: &mut MinerDeadline,
) -> Result<(MinerStore, String), StepFailure> {
    let uid: MinerUid = claim.key.miner;
    let response = ctx
        .db
        .responses()
        .get(claim.key.run, uid)
        .await
        .map_err(|e| crate::context::db_failure(&e))?;
    let Some(frozen_json) = response
        .as_ref()
        .filter(|r| r.verification_passed)
        .and_then(|r| r.frozen_manifest.clone())
    else {
        return Err(StepFailure::permanent(
            ErrorKind::Internal,
            Blame::Infrastructure,
            &format!(
                "miner {uid} has no verified store in run {}; run verify/open_store first",
                claim.key.run
            ),
        ));
    };
    let frozen = FrozenManifest::from_db_json(&frozen_json).map_err(|e| {
        StepFailure::permanent(
            ErrorKind::Internal,
            Blame::Infrastructure,
            &format!("stored manifest of miner {uid}: {e}"),
        )
    })?;
    let miner = ctx.miner(claim).await?;
    let url = crate::context::store_url(&miner.store_url, claim.key.run, init);
    let name = format!("miner {uid}");
    let reader = deadline
        .run(
            ctx.data
                .open_miner_store(&url, &miner.access_token, frozen, init, &name),
        )
        .await
        .and_then(|opened| opened)
        .map_err(|e| data_failure(&e, &[miner.access_token.as_str()]))?;
    Ok((reader, miner.access_token))
}
