//! The parse on two threads ([`super::parse_in_two`]): serde reads the file's structure on this
//! thread and hands each tag's `addressPrefixes` text, as soon as it is read, to a second thread,
//! which reads the prefixes meanwhile (the two halves of the parse overlap).

use std::sync::mpsc::{channel, Sender};

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{read_prefixes, PrefixText, RawFile, RawValue, TagPrefixes, Text};

/// The file's structure and each tag's prefixes, read on two threads. `None` when this does not
/// read the file (any error, a shape other than an object with the three fields once each, no
/// second thread to be had): the caller then parses on one thread, which decides and explains,
/// so both parses give exactly the same result.
pub(super) fn read(bytes: &[u8]) -> Option<(RawFile<PrefixText<'_>>, Vec<Option<TagPrefixes>>)> {
    std::thread::scope(|s| {
        let (send, receive) = channel::<&str>();
        let worker = std::thread::Builder::new()
            .name("tagwall-parse".into())
            .spawn_scoped(s, move || {
                receive.into_iter().map(read_prefixes).collect::<Vec<_>>()
            })
            .ok()?;
        let mut de = serde_json::Deserializer::from_slice(bytes);
        // The seed owns the only sender: once it is done, the second thread's list ends.
        let raw = FileSeed(send)
            .deserialize(&mut de)
            .and_then(|raw| de.end().map(|()| raw));
        let prefixes = worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let raw = raw.ok()?;
        (prefixes.len() == raw.values.len()).then_some((raw, prefixes))
    })
}

/// Reads the top-level object, sending each tag's prefix text on as it is read.
struct FileSeed<'a>(Sender<&'a str>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for FileSeed<'a> {
    type Value = RawFile<PrefixText<'a>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for FileSeed<'a> {
    type Value = RawFile<PrefixText<'a>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a ServiceTags file")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut change_number, mut cloud, mut values) = (None, None, None);
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match key.as_ref() {
                "changeNumber" if change_number.is_none() => {
                    change_number = Some(map.next_value::<i64>()?)
                }
                "cloud" if cloud.is_none() => cloud = Some(map.next_value::<String>()?),
                "values" if values.is_none() => {
                    values = Some(map.next_value_seed(ValuesSeed(&self.0))?)
                }
                "changeNumber" | "cloud" | "values" => {
                    return Err(A::Error::custom("a field appears twice"))
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match (change_number, cloud, values) {
            (Some(change_number), Some(cloud), Some(values)) => Ok(RawFile {
                change_number,
                cloud,
                values,
            }),
            _ => Err(A::Error::custom("a field is missing")),
        }
    }
}

/// Reads `values`, sending each tag's prefix text on.
struct ValuesSeed<'s, 'a>(&'s Sender<&'a str>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for ValuesSeed<'_, 'a> {
    type Value = Vec<RawValue<PrefixText<'a>>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for ValuesSeed<'_, 'a> {
    type Value = Vec<RawValue<PrefixText<'a>>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of service tags")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(value) = seq.next_element::<RawValue<PrefixText<'a>>>()? {
            // A second thread that is gone is seen by the caller: it has fewer lists.
            let _ = self.0.send(value.properties.address_prefixes.0);
            values.push(value);
        }
        Ok(values)
    }
}
