//! Timestamps in the formats each Google API writes (Compute: local offset and milliseconds; Logging: `Z` and nanoseconds).

use time::format_description::well_known::Rfc3339;
use time::macros::{format_description, offset};
use time::{Date, Month, OffsetDateTime, UtcOffset, Weekday};

/// US Pacific time, where Compute Engine writes its times: -07:00 from the second Sunday of March at 02:00 local
/// (10:00 UTC) to the first Sunday of November at 02:00 local (09:00 UTC), -08:00 otherwise.
pub(crate) fn pacific_offset(utc: OffsetDateTime) -> UtcOffset {
    let year = utc.year();
    let sunday = |month: Month, nth: u8| {
        Date::from_calendar_date(year, month, 1)
            .ok()
            .and_then(|first| {
                let days = (7 + Weekday::Sunday.number_days_from_monday()
                    - first.weekday().number_days_from_monday())
                    % 7;
                first.checked_add(time::Duration::days(
                    i64::from(days) + 7 * i64::from(nth - 1),
                ))
            })
    };
    let summer = match (sunday(Month::March, 2), sunday(Month::November, 1)) {
        (Some(start), Some(end)) => {
            let start = start.midnight().assume_utc() + time::Duration::hours(10);
            let end = end.midnight().assume_utc() + time::Duration::hours(9);
            utc >= start && utc < end
        }
        _ => false,
    };
    if summer {
        offset!(-07:00)
    } else {
        offset!(-08:00)
    }
}

/// `2021-03-17T12:38:59.990-07:00`, as Compute Engine writes `creationTimestamp` and operation times.
pub(crate) fn compute_now() -> String {
    let utc = OffsetDateTime::now_utc();
    let now = utc.to_offset(pacific_offset(utc));
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

/// An entry's `timestamp` and its `receiveTimestamp`: Logging receives an entry a moment after it was written.
pub(crate) fn logging_pair() -> (String, String) {
    let written = OffsetDateTime::now_utc();
    let received = written + time::Duration::milliseconds(87);
    (
        written.format(&Rfc3339).unwrap_or_default(),
        received.format(&Rfc3339).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn compute_writes_pacific_time_with_its_real_offset() {
        for (utc, offset) in [
            (datetime!(2026-01-15 12:00 UTC), offset!(-08:00)),
            (datetime!(2026-03-08 09:59 UTC), offset!(-08:00)),
            (datetime!(2026-03-08 10:00 UTC), offset!(-07:00)),
            (datetime!(2026-07-04 12:00 UTC), offset!(-07:00)),
            (datetime!(2026-11-01 08:59 UTC), offset!(-07:00)),
            (datetime!(2026-11-01 09:00 UTC), offset!(-08:00)),
            (datetime!(2026-11-29 20:00 UTC), offset!(-08:00)),
        ] {
            assert_eq!(pacific_offset(utc), offset, "{utc}");
        }
    }

    #[test]
    fn an_entry_is_received_after_it_is_written() {
        let (written, received) = logging_pair();
        assert!(received > written, "{written} {received}");
    }
}
