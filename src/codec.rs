//! A pass-through gRPC codec: the library forwards request bytes it did not build exactly as they are
//! and hands response bytes back as they arrived, without decoding and re-encoding them.

use bytes::{Buf, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

use crate::request::Payload;

/// Encodes a [`Payload`] as the message body and decodes the response body as [`Bytes`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThroughCodec;

impl Codec for PassThroughCodec {
    type Encode = Payload;
    type Decode = Bytes;
    type Encoder = PayloadEncoder;
    type Decoder = BytesDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        PayloadEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesDecoder
    }
}

/// Writes a payload into tonic's frame buffer (the one copy the wire needs).
#[derive(Debug)]
pub struct PayloadEncoder;

impl Encoder for PayloadEncoder {
    type Item = Payload;
    type Error = Status;

    fn encode(&mut self, item: Payload, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.encoded_len());
        item.write_to(dst);
        Ok(())
    }
}

/// Takes the response body out of tonic's receive buffer without copying it.
#[derive(Debug)]
pub struct BytesDecoder;

impl Decoder for BytesDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len)))
    }
}
