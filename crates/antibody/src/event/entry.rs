//! The fields of a LogEntry that an AuditEvent keeps, read straight from JSON: everything else is skipped, never built.
//!
//! Reading is lenient the way `Value::as_str` is: a field of an unexpected type reads as absent, so an entry is
//! refused only for what it lacks, never for what it carries besides.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A string where Google writes one; any other value reads as absent.
#[derive(Debug, Default)]
pub(super) struct Text<'a>(Option<Cow<'a, str>>);

impl Text<'_> {
    pub(super) fn get(&self) -> &str {
        self.0.as_deref().unwrap_or_default()
    }
}

/// A JSON object read as `T`; any other value reads as absent.
#[derive(Debug)]
pub(super) struct Object<T>(pub(super) Option<T>);

impl<T> Default for Object<T> {
    fn default() -> Self {
        Object(None)
    }
}

/// A JSON array whose object elements read as `T`; other elements are skipped, any other value reads as empty.
#[derive(Debug)]
pub(super) struct List<T>(pub(super) Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

/// A boolean; any other value reads as `false`.
#[derive(Debug, Default)]
pub(super) struct Flag(pub(super) bool);

/// `status.code`: a number or a numeric string; absent (or another type) reads as 0, unreadable as -1.
#[derive(Debug, Default)]
pub(super) struct Code(pub(super) i64);

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Entry<'a> {
    #[serde(borrow)]
    pub proto_payload: Object<Payload<'a>>,
    #[serde(borrow)]
    pub log_name: Text<'a>,
    #[serde(borrow)]
    pub insert_id: Text<'a>,
    #[serde(borrow)]
    pub resource: Object<Resource<'a>>,
    #[serde(borrow)]
    pub operation: Object<Operation<'a>>,
    #[serde(borrow)]
    pub split: Object<Split<'a>>,
    #[serde(borrow)]
    pub timestamp: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Payload<'a> {
    #[serde(borrow)]
    pub service_name: Text<'a>,
    #[serde(borrow)]
    pub method_name: Text<'a>,
    #[serde(borrow)]
    pub resource_name: Text<'a>,
    #[serde(borrow)]
    pub authentication_info: Object<Authentication<'a>>,
    #[serde(borrow)]
    pub request_metadata: Object<RequestMetadata<'a>>,
    pub status: Object<Status>,
    #[serde(borrow)]
    pub service_data: Object<ServiceData<'a>>,
}

/// `serviceData` of an IAM write: the policy delta Google computed.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ServiceData<'a> {
    #[serde(borrow)]
    pub policy_delta: Object<PolicyDelta<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PolicyDelta<'a> {
    #[serde(borrow)]
    pub audit_config_deltas: List<AuditConfigDelta<'a>>,
}

/// One change of a policy's `auditConfigs`: a log type (or an exempted member of it) added or removed.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct AuditConfigDelta<'a> {
    #[serde(borrow)]
    pub action: Text<'a>,
    #[serde(borrow)]
    pub service: Text<'a>,
    #[serde(borrow)]
    pub exempted_member: Text<'a>,
    #[serde(borrow)]
    pub log_type: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Authentication<'a> {
    #[serde(borrow)]
    pub principal_email: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RequestMetadata<'a> {
    #[serde(borrow)]
    pub caller_ip: Text<'a>,
    #[serde(borrow)]
    pub caller_supplied_user_agent: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Status {
    pub code: Code,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Resource<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Text<'a>,
    #[serde(borrow)]
    pub labels: Object<Labels<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Labels<'a> {
    #[serde(borrow)]
    pub project_id: Text<'a>,
    /// The region of a regional resource (Cloud Run's `location`), which some names leave out.
    #[serde(borrow)]
    pub location: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Operation<'a> {
    #[serde(borrow)]
    pub id: Text<'a>,
    pub first: Flag,
    pub last: Flag,
}

/// `split` of one part of an audit entry too large for one LogEntry.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Split<'a> {
    #[serde(borrow)]
    pub uid: Text<'a>,
    pub index: Code,
    pub total_splits: Code,
}

/// Drains whatever compound value a lenient reader did not want.
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Implements the scalar and compound visits of a lenient reader: each yields `$other` unless listed by the reader.
macro_rules! otherwise {
    ($other:expr; $($skip:ident: $ty:ty),*) => {
        $(fn $skip<E: de::Error>(self, _: $ty) -> Result<Self::Value, E> { Ok($other) })*
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> { Ok($other) }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> { Ok($other) }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            skip_seq(seq).map(|()| $other)
        }
    };
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Reader;
        impl<'de> Visitor<'de> for Reader {
            type Value = Text<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(text))))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(text.to_string()))))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(text))))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                skip_map(map).map(|()| Text(None))
            }
            otherwise!(Text(None); visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64);
        }
        deserializer.deserialize_any(Reader)
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Reader;
        impl<'de> Visitor<'de> for Reader {
            type Value = Flag;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
                Ok(Flag(value))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                skip_map(map).map(|()| Flag(false))
            }
            otherwise!(Flag(false); visit_str: &str, visit_i64: i64, visit_u64: u64, visit_f64: f64);
        }
        deserializer.deserialize_any(Reader)
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Reader;
        impl<'de> Visitor<'de> for Reader {
            type Value = Code;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("any JSON value")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                Ok(Code(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                Ok(Code(i64::try_from(value).unwrap_or(-1)))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Code(-1))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Code(text.parse().unwrap_or(-1)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                skip_map(map).map(|()| Code(0))
            }
            otherwise!(Code(0); visit_bool: bool);
        }
        deserializer.deserialize_any(Reader)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Reader<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Reader<T> {
            type Value = List<T>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Object<T>>()? {
                    items.extend(item.0);
                }
                Ok(List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                skip_map(map).map(|()| List(Vec::new()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
        }
        deserializer.deserialize_any(Reader(std::marker::PhantomData))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Reader<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Reader<T> {
            type Value = Object<T>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|value| Object(Some(value)))
            }
            otherwise!(Object(None); visit_bool: bool, visit_str: &str, visit_i64: i64, visit_u64: u64, visit_f64: f64);
        }
        deserializer.deserialize_any(Reader(std::marker::PhantomData))
    }
}
