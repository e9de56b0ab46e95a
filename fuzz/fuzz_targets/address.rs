//! Address parsing, host checks and the protobuf structure check on arbitrary input: no panic, and
//! what parses is normalised consistently.
#![no_main]

use jina_net::{host_is_local, is_remote_local_connection, Address};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = jina_net::wire::check_message(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(a) = Address::parse(text) {
        assert!(a.port() != 0 && !a.host().is_empty());
        // the key is a canonical address: it parses to itself
        let again = Address::parse(a.key()).expect("a key parses");
        assert_eq!(again.key(), a.key());
        assert_eq!((again.host(), again.port()), (a.host(), a.port()));
    }
    let _ = host_is_local(text);
    if let Some((first, second)) = text.split_at_checked(text.len() / 2) {
        let _ = is_remote_local_connection(first, second);
    }
});
