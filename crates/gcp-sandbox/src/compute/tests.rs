//! Unit tests of the Compute emulation.

use super::operations::is_uuid;
use super::*;

#[test]
fn merge_patch_follows_rfc_7396() {
    let mut target = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]});
    merge_patch(&mut target, &json!({"a": null, "b": {"c": 9}, "e": [3]}));
    assert_eq!(target, json!({"b": {"c": 9, "d": 3}, "e": [3]}));
}

#[test]
fn request_ids_must_be_nonzero_uuids() {
    assert!(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
    assert!(!is_uuid("00000000-0000-0000-0000-000000000000"));
    assert!(!is_uuid("not-a-uuid"));
}
