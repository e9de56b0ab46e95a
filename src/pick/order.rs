//! The order replicas of a list are tried in, and "skip ejected replicas while a live one exists",
//! written once for round robin, fail-over, hedging and slot acquisition.

use std::sync::Arc;

use crate::replica::Replica;

/// The indexes of a list of `n` from `start` on, wrapping around: `start, start+1, ..., start-1`.
pub(crate) fn from(start: usize, n: usize) -> impl Iterator<Item = usize> + Clone {
    (0..n).map(move |k| (start + k) % n)
}

/// The indexes of a list of `n` after `i`, wrapping around, `i` itself last.
pub(crate) fn after(i: usize, n: usize) -> impl Iterator<Item = usize> + Clone {
    from(i + 1, n)
}

/// The indexes of `order` whose replicas are not ejected; all of `order` when every one of them is.
pub(crate) fn live<'a>(
    replicas: &'a [Arc<Replica>],
    order: impl Iterator<Item = usize> + Clone + 'a,
) -> impl Iterator<Item = usize> + 'a {
    let ejected = move |i: usize| replicas[i].health().is_ejected();
    let any_live = order.clone().any(|i| !ejected(i));
    order.filter(move |&i| !any_live || !ejected(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_wrap() {
        assert_eq!(from(2, 4).collect::<Vec<_>>(), [2, 3, 0, 1]);
        assert_eq!(after(2, 4).collect::<Vec<_>>(), [3, 0, 1, 2]);
        assert_eq!(after(0, 1).collect::<Vec<_>>(), [0]);
        assert_eq!(from(0, 0).count(), 0);
    }
}
