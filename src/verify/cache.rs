//! A small bounded map whose entries expire: what the verifier remembers about signers it has
//! seen (their path, their revocation answer) and CRLs it has fetched. Bounded so that a flood
//! of distinct certificates costs a fixed amount of memory; expiring so that nothing is
//! believed past the time its source said it could be (a CRL's or OCSP answer's nextUpdate).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) struct TtlCache<K, V> {
    capacity: usize,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(key) {
            Some((value, until)) if *until > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` for `ttl`. When full, expired entries go first; if none has expired, an
    /// eighth of the entries is dropped (whichever the map yields first), which keeps inserts
    /// cheap without tracking use order.
    pub fn insert(&self, key: K, value: V, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let Some(until) = Instant::now().checked_add(ttl) else {
            return;
        };
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let now = Instant::now();
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= self.capacity {
                let drop: Vec<K> = entries
                    .keys()
                    .take((self.capacity / 8).max(1))
                    .cloned()
                    .collect();
                for k in drop {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(key, (value, until));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_returned_until_it_expires() {
        let cache = TtlCache::new(4);
        cache.insert("a", 1, Duration::from_secs(60));
        cache.insert("b", 2, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(cache.get(&"a"), Some(1));
        assert_eq!(cache.get(&"b"), None);
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = TtlCache::new(100);
        for i in 0..10_000 {
            cache.insert(i, i, Duration::from_secs(60));
            assert!(cache.len() <= 100);
        }
        assert_eq!(cache.get(&9_999), Some(9_999));
    }

    #[test]
    fn a_zero_lifetime_is_not_stored() {
        let cache = TtlCache::new(4);
        cache.insert("a", 1, Duration::ZERO);
        assert_eq!(cache.len(), 0);
    }
}
