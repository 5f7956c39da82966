//! Timestamps in the formats each Google API writes (Compute: local offset and milliseconds; Logging: `Z` and nanoseconds).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::{format_description, offset};

/// `2021-03-17T12:38:59.990-07:00`, as Compute Engine writes `creationTimestamp` and operation times.
pub(crate) fn compute_now() -> String {
    let now = OffsetDateTime::now_utc().to_offset(offset!(-07:00));
    now.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory]:[offset_minute]"
    ))
    .unwrap_or_default()
}

/// `2018-09-06T14:22:17.093074323Z`, as Cloud Logging writes `timestamp` and `receiveTimestamp`.
pub(crate) fn logging_now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}
