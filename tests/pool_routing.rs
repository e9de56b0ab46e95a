//! The pool's routing, as jina 3.1's networking tests count it: how many sends go where for ANY and
//! ALL, shard ids, heads, unknown deployments, repeated adds and removals of absent addresses.
//! Routing needs no server (channels connect lazily); `tests/sends.rs` sends for real.

mod common;

use jina_net::{
    create_connection_pool, ConnectionPool, Error, Polling, ReplicaSet, ReplicaState, Request, Route, SendOptions, To,
};

fn status() -> Request {
    Request::from(&jina_net::control::control_request(jina_net::proto::Command::Status))
}

fn count(pool: &ConnectionPool, deployment: &str, head: bool, shard: Option<u32>, polling: Polling) -> usize {
    match pool.send_request(
        status(),
        deployment,
        To::jina(head, shard, polling),
        &SendOptions::default(),
    ) {
        Ok(send) => send.len(),
        Err(Error::UnknownDeployment { .. } | Error::NoReplicas { .. }) => 0,
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn send_counts_like_jina() {
    let pool = ConnectionPool::default();
    assert!(pool.add_connection("encoder", "1.1.1.1:53", false, None).unwrap());
    assert!(pool.add_connection("encoder", "1.1.1.2:53", false, None).unwrap());
    assert_eq!(count(&pool, "encoder", false, None, Polling::Any), 1);
    assert_eq!(count(&pool, "encoder", false, None, Polling::All), 1);
    // no head yet
    assert_eq!(count(&pool, "encoder", true, None, Polling::Any), 0);
    pool.add_connection("encoder", "1.1.1.3:53", true, None).unwrap();
    assert_eq!(count(&pool, "encoder", true, None, Polling::Any), 1);
    // a second shard
    pool.add_connection("encoder", "1.1.1.4:53", false, Some(1)).unwrap();
    assert_eq!(count(&pool, "encoder", false, None, Polling::All), 2);
    assert_eq!(count(&pool, "encoder", false, Some(1), Polling::Any), 1);
    // ALL ignores head and shard id
    assert_eq!(count(&pool, "encoder", true, Some(7), Polling::All), 2);
    // unknown shard, unknown deployment
    assert_eq!(count(&pool, "encoder", false, Some(5), Polling::Any), 0);
    assert_eq!(count(&pool, "doesnotexist", false, None, Polling::Any), 0);
    assert_eq!(count(&pool, "doesnotexist", false, None, Polling::All), 0);
}

#[test]
fn clear_errors_for_unknown_and_empty_targets() {
    let pool = ConnectionPool::default();
    let e = pool
        .send_request(status(), "nope", To::AnyShard, &SendOptions::default())
        .unwrap_err();
    assert!(
        matches!(&e, Error::UnknownDeployment { deployment } if deployment == "nope"),
        "{e}"
    );
    assert!(e.to_string().contains("\"nope\""), "{e}");
    pool.add_connection("d", "1.1.1.1:53", false, Some(0)).unwrap();
    let e = pool
        .send_request(status(), "d", To::Head, &SendOptions::default())
        .unwrap_err();
    assert_eq!(e.to_string(), "deployment \"d\" has no replica for head");
    let e = pool
        .send_request(status(), "d", To::Shard(3), &SendOptions::default())
        .unwrap_err();
    assert_eq!(e.to_string(), "deployment \"d\" has no replica for shard 3");
}

#[test]
fn add_twice_and_remove_absent() {
    let pool = ConnectionPool::default();
    assert!(pool.add_connection("d", "1.1.1.1:53", false, None).unwrap());
    assert!(!pool.add_connection("d", "1.1.1.1:53", false, None).unwrap());
    assert!(!pool.add_connection("d", "grpcs://1.1.1.1:53", false, Some(0)).unwrap());
    assert!(
        pool.add_connection("d", "1.1.1.1:53", false, Some(1)).unwrap(),
        "another shard is another list"
    );
    assert!(
        pool.add_connection("d", "1.1.1.1:53", true, None).unwrap(),
        "the head is another list"
    );
    assert!(pool
        .remove_connection("d", "1.1.1.9:53", false, None)
        .unwrap()
        .is_none());
    assert!(pool
        .remove_connection("x", "1.1.1.1:53", false, None)
        .unwrap()
        .is_none());
    assert!(pool
        .remove_connection("d", "1.1.1.1:53", false, Some(4))
        .unwrap()
        .is_none());
    let removed = pool.remove_connection("d", "1.1.1.1:53", false, None).unwrap().unwrap();
    assert_eq!(removed.address().key(), "1.1.1.1:53");
    assert!(pool
        .remove_connection("d", "1.1.1.1:53", false, None)
        .unwrap()
        .is_none());
    // shard 0's list is gone, shard 1 and head remain
    assert_eq!(
        pool.routing_table().unwrap(),
        vec![
            Route {
                deployment: "d".into(),
                replica_set: ReplicaSet::Head,
                addresses: vec!["1.1.1.1:53".into()],
                states: vec![ReplicaState::Idle],
            },
            Route {
                deployment: "d".into(),
                replica_set: ReplicaSet::Shard(1),
                addresses: vec!["1.1.1.1:53".into()],
                states: vec![ReplicaState::Idle],
            },
        ]
    );
    pool.remove_connection("d", "1.1.1.1:53", false, Some(1))
        .unwrap()
        .unwrap();
    pool.remove_connection("d", "1.1.1.1:53", true, None).unwrap().unwrap();
    assert!(
        !pool.has_deployment("d"),
        "a deployment with no replicas left is dropped"
    );
    assert!(pool.routing_table().unwrap().is_empty());
}

#[test]
fn bad_addresses_are_errors() {
    let pool = ConnectionPool::default();
    for bad in ["", "nohost", "h:99999", "ftp://h:1", ":1"] {
        let e = pool.add_connection("d", bad, false, None).unwrap_err();
        assert!(matches!(e, Error::InvalidAddress { .. }), "{bad:?}: {e}");
    }
    assert!(!pool.has_deployment("d"), "a failed add leaves nothing behind");
}

#[test]
fn any_without_shard_id_rotates_over_shards_and_replicas() {
    let pool = ConnectionPool::default();
    pool.add_connection("d", "10.0.0.1:1", false, Some(0)).unwrap();
    pool.add_connection("d", "10.0.0.2:1", false, Some(0)).unwrap();
    pool.add_connection("d", "10.0.1.1:1", false, Some(1)).unwrap();
    let mut picks = Vec::new();
    for _ in 0..4 {
        let send = pool
            .send_request(status(), "d", To::AnyShard, &SendOptions::default())
            .unwrap();
        picks.extend(send.targets().map(|(set, a)| format!("{set}@{a}")));
    }
    // jina bumps the deployment's counter before use: shard 1 first, then shard 0, ...
    assert_eq!(
        picks,
        [
            "shard 1@10.0.1.1:1",
            "shard 0@10.0.0.1:1",
            "shard 1@10.0.1.1:1",
            "shard 0@10.0.0.2:1"
        ]
    );
    let all: Vec<String> = pool
        .send_request(status(), "d", To::AllShards, &SendOptions::default())
        .unwrap()
        .targets()
        .map(|(set, a)| format!("{set}@{a}"))
        .collect();
    assert_eq!(all, ["shard 0@10.0.0.1:1", "shard 1@10.0.1.1:1"]);
}

#[test]
fn methods_follow_the_request_kinds() {
    use jina_net::request::Method;
    let pool = ConnectionPool::default();
    pool.add_connection("d", "10.0.0.1:1", false, None).unwrap();
    let one = pool
        .send_request(common::data("a"), "d", To::AnyShard, &SendOptions::default())
        .unwrap();
    assert_eq!(one.method(), Method::ProcessSingleData);
    let two = pool
        .send_requests(
            &[common::data("a"), common::data("b")],
            "d",
            To::AnyShard,
            &SendOptions::default(),
        )
        .unwrap();
    assert_eq!(two.method(), Method::ProcessData);
    assert_eq!(
        pool.send_request(status(), "d", To::AnyShard, &SendOptions::default())
            .unwrap()
            .method(),
        Method::ProcessControl
    );
    let e = pool
        .send_requests(&[status(), status()], "d", To::AnyShard, &SendOptions::default())
        .unwrap_err();
    assert!(matches!(e, Error::InvalidRequest(_)), "{e}");
    let e = pool
        .send_requests(&[], "d", To::AnyShard, &SendOptions::default())
        .unwrap_err();
    assert!(matches!(e, Error::InvalidRequest(_)), "{e}");
    let e = pool
        .send_request(
            common::data("a"),
            "d",
            To::AnyShard,
            &SendOptions {
                endpoint: Some("bad\nendpoint"),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(e, Error::InvalidRequest(_)), "{e}");
}

#[test]
fn closed_pool_refuses_everything() {
    let pool = ConnectionPool::default();
    pool.add_connection("d", "10.0.0.1:1", false, None).unwrap();
    let clone = pool.clone();
    pool.close();
    pool.close();
    assert!(clone.is_closed());
    assert!(matches!(
        clone.add_connection("d", "10.0.0.2:1", false, None),
        Err(Error::PoolClosed)
    ));
    assert!(matches!(
        clone.remove_connection("d", "10.0.0.1:1", false, None),
        Err(Error::PoolClosed)
    ));
    assert!(matches!(
        clone.send_request(status(), "d", To::AnyShard, &SendOptions::default()),
        Err(Error::PoolClosed)
    ));
    assert!(matches!(clone.routing_table(), Err(Error::PoolClosed)));
}

#[test]
fn kubernetes_pool_outside_a_cluster_is_a_clear_error() {
    assert!(create_connection_pool(false, None, Default::default()).is_ok());
    let e = create_connection_pool(true, Some("ns"), Default::default()).unwrap_err();
    assert!(matches!(e, Error::Kubernetes(_)), "{e}");
    assert!(e.to_string().contains("in-cluster"), "{e}");
}
