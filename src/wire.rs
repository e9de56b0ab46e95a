//! A cheap structural check of protobuf bytes: walks the top-level fields (tags, wire types, lengths)
//! without building the message, so garbage is refused before it reaches a server; and the varint
//! helpers that frame messages by hand.

use bytes::BufMut;

/// Checks that `bytes` parse as a sequence of well-formed protobuf fields.
/// Returns a description of the first problem found.
pub fn check_message(bytes: &[u8]) -> Result<(), String> {
    let mut pos = 0usize;
    while pos < bytes.len() {
        let (key, next) = read_varint(bytes, pos).ok_or_else(|| format!("truncated field key at byte {pos}"))?;
        let field = key >> 3;
        if field == 0 || field > (1 << 29) - 1 {
            return Err(format!("invalid field number {field} at byte {pos}"));
        }
        pos = next;
        match key & 7 {
            0 => {
                pos = read_varint(bytes, pos)
                    .ok_or_else(|| format!("truncated varint in field {field}"))?
                    .1
            }
            1 => pos = skip(bytes, pos, 8).ok_or_else(|| format!("truncated 64-bit value in field {field}"))?,
            5 => pos = skip(bytes, pos, 4).ok_or_else(|| format!("truncated 32-bit value in field {field}"))?,
            2 => {
                let (len, next) =
                    read_varint(bytes, pos).ok_or_else(|| format!("truncated length in field {field}"))?;
                let len = usize::try_from(len).map_err(|_| format!("length overflow in field {field}"))?;
                pos = skip(bytes, next, len)
                    .ok_or_else(|| format!("field {field} claims {len} bytes past the end of the message"))?;
            }
            wire_type => return Err(format!("unsupported wire type {wire_type} in field {field}")),
        }
    }
    Ok(())
}

/// Writes `value` as a protobuf varint.
pub(crate) fn put_varint(dst: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        dst.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    dst.put_u8(value as u8);
}

/// The length of `value` as a protobuf varint.
pub(crate) fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

fn skip(bytes: &[u8], pos: usize, n: usize) -> Option<usize> {
    let end = pos.checked_add(n)?;
    (end <= bytes.len()).then_some(end)
}

fn read_varint(bytes: &[u8], mut pos: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(pos)?;
        pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some((value, pos));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn real_messages_pass_and_garbage_fails() {
        let req = crate::proto::DataRequestProto {
            header: Some(crate::proto::HeaderProto {
                request_id: "abc".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(check_message(&req.encode_to_vec()), Ok(()));
        assert_eq!(check_message(&[]), Ok(()));
        assert!(check_message(&[0xff, 0xff, 0xff]).is_err());
        assert!(check_message(&[0x0a, 0x05, 0x01]).is_err());
        assert!(check_message(&[0x0b]).is_err());
        assert!(check_message(b"hello world, not protobuf").is_err());
    }
}
