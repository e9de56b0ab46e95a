//! jina 3.1's ReplicaList behaviour: add / has / remove, round robin and its wrap, cursor fix-up.

use jina_net::{ReplicaConfig, ReplicaList};

fn list_of(addresses: &[&str]) -> ReplicaList {
    let config = ReplicaConfig::default();
    let mut list = ReplicaList::new();
    for a in addresses {
        assert!(list.add_connection(a, &config).unwrap());
    }
    list
}

fn next(list: &ReplicaList) -> String {
    list.next_connection().unwrap().address().key().to_owned()
}

#[test]
fn add_has_and_duplicates() {
    let config = ReplicaConfig::default();
    let mut list = ReplicaList::new();
    assert!(!list.has_connections());
    assert!(list.next_connection().is_none());
    assert!(list.add_connection("127.0.0.1:1001", &config).unwrap());
    assert!(list.has_connection("127.0.0.1:1001"));
    assert!(list.has_connection("grpc://127.0.0.1:1001"));
    assert!(!list.has_connection("127.0.0.1:1002"));
    // Known address, also through another scheme: no-op.
    assert!(!list.add_connection("127.0.0.1:1001", &config).unwrap());
    assert!(!list.add_connection("https://127.0.0.1:1001", &config).unwrap());
    assert_eq!(list.len(), 1);
    assert!(list.has_connections());
    assert!(list.add_connection("not an address", &config).is_err());
    assert_eq!(list.len(), 1);
}

#[test]
fn round_robin_wraps_from_the_first() {
    let list = list_of(&["h:1", "h:2", "h:3"]);
    let picks: Vec<String> = (0..7).map(|_| next(&list)).collect();
    assert_eq!(picks, ["h:1", "h:2", "h:3", "h:1", "h:2", "h:3", "h:1"]);
    let all: Vec<&str> = list.replicas().iter().map(|c| c.address().key()).collect();
    assert_eq!(all, ["h:1", "h:2", "h:3"]);
}

#[test]
fn remove_resets_the_cursor_like_jina() {
    let mut list = list_of(&["h:1", "h:2", "h:3"]);
    // cursor -> 2 (h:3 next)
    next(&list);
    next(&list);
    // cursor = 2 % (3 - 1) = 0, then h:1 is removed: [h:2, h:3], next is index 0 = h:2
    let removed = list.remove_connection("h:1").unwrap();
    assert_eq!(removed.address().key(), "h:1");
    assert!(!list.has_connection("h:1"));
    assert_eq!(next(&list), "h:2");
    assert_eq!(next(&list), "h:3");
    assert_eq!(next(&list), "h:2");
    // Absent address: None, nothing changes.
    assert!(list.remove_connection("h:9").is_none());
    assert!(list.remove_connection("garbage").is_none());
    assert_eq!(list.len(), 2);
    // Indices shift after removal: removing the now-first leaves the other reachable.
    list.remove_connection("h:2").unwrap();
    assert_eq!(next(&list), "h:3");
    list.remove_connection("h:3").unwrap();
    assert!(!list.has_connections());
    assert!(list.next_connection().is_none());
}

#[test]
fn adding_keeps_the_cursor_position() {
    let mut list = list_of(&["h:1", "h:2"]);
    next(&list); // cursor 1
    list.add_connection("h:3", &ReplicaConfig::default()).unwrap();
    assert_eq!(next(&list), "h:2");
    assert_eq!(next(&list), "h:3");
    assert_eq!(next(&list), "h:1");
}

#[test]
fn close_empties() {
    let mut list = list_of(&["h:1", "h:2"]);
    list.close();
    assert!(!list.has_connections());
    assert!(list.next_connection().is_none());
}
