//! Step numbers within one operation: every Raft command of an operation is recorded under
//! `(op, step)` in the partition that applies it, so each must be unique per partition and operation.
//!
//! The low byte names the step; the next byte is the *attempt*: a coordinator that must redo the
//! prepares of an operation (because what it prepared no longer matches, see `coord`) moves to a new
//! attempt, whose steps are fresh keys.

/// A single-partition mutation, or the decision of a cross-partition operation.
pub const DECIDE: u32 = 0;
/// Prepare of the inode the operation creates, links or removes (create, link, rmdir).
pub const PREPARE_CHILD: u32 = 1;
/// Prepare of a rename's source entry (its directory lives elsewhere than the target's).
pub const PREPARE_SRC: u32 = 2;
/// Prepare of the directory a rename replaces (dying).
pub const PREPARE_TARGET: u32 = 3;
/// `FINISH + p`: the commit or undo of prepare `p`.
pub const FINISH: u32 = 16;
/// `EFFECT + i`: the `i`-th effect of a decision's outbox (fewer than 32).
pub const EFFECT: u32 = 32;
/// The outbox of the decision is drained.
pub const OUTBOX_DONE: u32 = 64;

const ATTEMPT_SHIFT: u32 = 8;

pub const fn at(step: u32, attempt: u32) -> u32 {
    step | (attempt << ATTEMPT_SHIFT)
}

pub const fn attempt_of(step: u32) -> u32 {
    step >> ATTEMPT_SHIFT
}

pub const fn finish_of(prepare_step: u32) -> u32 {
    prepare_step + FINISH
}

pub const fn effect_of(decide_step: u32, i: u32) -> u32 {
    decide_step + EFFECT + i
}

pub const fn outbox_done_of(decide_step: u32) -> u32 {
    decide_step + OUTBOX_DONE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_of_one_attempt_are_distinct_and_keep_their_attempt() {
        let d = at(DECIDE, 3);
        let all = [
            d,
            at(PREPARE_CHILD, 3),
            at(PREPARE_SRC, 3),
            at(PREPARE_TARGET, 3),
            finish_of(at(PREPARE_CHILD, 3)),
            finish_of(at(PREPARE_SRC, 3)),
            finish_of(at(PREPARE_TARGET, 3)),
            effect_of(d, 0),
            effect_of(d, 31),
            outbox_done_of(d),
        ];
        let set: std::collections::HashSet<u32> = all.iter().copied().collect();
        assert_eq!(set.len(), all.len());
        assert!(all.iter().all(|s| attempt_of(*s) == 3));
        assert_ne!(at(DECIDE, 0), at(DECIDE, 1));
    }
}
