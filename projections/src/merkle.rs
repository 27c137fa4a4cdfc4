//! The audit trail as a Merkle tree, as RFC 9162 (Certificate Transparency
//! 2.0) section 2.1 defines it: one leaf per trail row in trail order (leaf
//! index = position - 1), leaf hash `SHA-256(0x00 || leaf bytes)`, node hash
//! `SHA-256(0x01 || left || right)`, the root of the empty tree
//! `SHA-256("")`. The leaf bytes are the canonical encoding of the stored
//! event ([`crate::audit::canonical_event`]; `docs/audit-proofs.md`).
//!
//! Stored: every row's leaf hash (`audit_trail.leaf_hash`), and the hash of
//! every complete subtree at the levels 4, 8, 12, ... (`merkle_nodes`). A
//! subtree at any other level is computed from at most eight stored hashes
//! of the level below it, so appending costs O(1) amortised writes per leaf
//! and O(log n) reads, a root or a proof O(log n) reads, and the log is
//! never hashed again.

use base64::Engine;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use crate::db::DbError;
use crate::rows::{self, Val};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Levels kept in `merkle_nodes`: the multiples of this.
const STRIDE: u32 = 4;

/// Children of a stored node in the stored level below it.
const FAN: u64 = 1 << STRIDE;

/// `SHA-256(0x00 || bytes)`.
pub fn leaf_hash(bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(bytes);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A hash as the ledger shows and stores it: standard base64.
pub fn encode(hash: &Hash) -> String {
    base64::engine::general_purpose::STANDARD.encode(hash)
}

/// A hash from its base64 form.
pub fn decode(text: &str) -> Option<Hash> {
    base64::engine::general_purpose::STANDARD.decode(text.trim()).ok()?.try_into().ok()
}

/// The largest power of two below `n` (n >= 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The root of a perfect tree of `hashes` (a power of two of them).
fn fold_perfect(mut hashes: Vec<Hash>) -> Hash {
    while hashes.len() > 1 {
        hashes = hashes.chunks(2).map(|pair| node_hash(&pair[0], &pair[1])).collect();
    }
    hashes.pop().unwrap_or_else(empty_root)
}

/// The tree built leaf by leaf in memory: the roots of its complete
/// subtrees, largest first (a compact range from leaf 0).
#[derive(Debug, Default, Clone)]
pub struct Frontier {
    subtrees: Vec<(u32, Hash)>,
}

impl Frontier {
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (0, leaf);
        while let Some(&(level, left)) = self.subtrees.last() {
            if level != node.0 {
                break;
            }
            self.subtrees.pop();
            node = (level + 1, node_hash(&left, &node.1));
        }
        self.subtrees.push(node);
    }

    /// The root of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut parts = self.subtrees.iter().rev();
        let Some(&(_, mut root)) = parts.next() else { return empty_root() };
        for (_, left) in parts {
            root = node_hash(left, &root);
        }
        root
    }
}

/// The stored subtrees made again from the leaves as they pass (for
/// `verify`), to compare with the stored ones.
#[derive(Debug, Default)]
pub struct Recomputed {
    /// Per stored level above the leaves: the hashes of the block being
    /// filled below it, and how many of its nodes were made.
    pending: Vec<Vec<Hash>>,
    made_at: Vec<u64>,
    /// `(level, index, hash)` made since the last comparison.
    made: Vec<(u32, u64, Hash)>,
}

impl Recomputed {
    pub fn push(&mut self, leaf: Hash) {
        let (mut hash, mut k) = (leaf, 0);
        loop {
            if self.pending.len() <= k {
                self.pending.push(Vec::new());
                self.made_at.push(0);
            }
            self.pending[k].push(hash);
            if self.pending[k].len() < FAN as usize {
                return;
            }
            hash = fold_perfect(std::mem::take(&mut self.pending[k]));
            self.made.push(((k as u32 + 1) * STRIDE, self.made_at[k], hash));
            self.made_at[k] += 1;
            k += 1;
        }
    }

    /// The first stored subtree made since the last call that differs from
    /// what the leaves make (or is missing): its level and index.
    pub async fn compare(&mut self, conn: &mut AnyConnection) -> Result<Option<(u32, u64)>, DbError> {
        let made = std::mem::take(&mut self.made);
        let mut levels: Vec<u32> = made.iter().map(|m| m.0).collect();
        levels.sort_unstable();
        levels.dedup();
        for level in levels {
            let at_level: Vec<&(u32, u64, Hash)> = made.iter().filter(|m| m.0 == level).collect();
            let (Some(first), Some(last)) = (at_level.first(), at_level.last()) else { continue };
            let stored: Vec<(i64, String)> =
                sqlx::query_as("SELECT idx, hash FROM merkle_nodes WHERE level = $1 AND idx BETWEEN $2 AND $3 ORDER BY idx")
                    .bind(level as i64)
                    .bind(first.1 as i64)
                    .bind(last.1 as i64)
                    .fetch_all(&mut *conn)
                    .await?;
            for (i, (_, index, hash)) in at_level.iter().enumerate() {
                let same = stored.get(i).is_some_and(|(idx, h)| *idx as u64 == *index && decode(h).as_ref() == Some(hash));
                if !same {
                    return Ok(Some((level, *index)));
                }
            }
        }
        Ok(None)
    }

    /// A stored level holding more subtrees than the leaves make: the level.
    pub async fn extra(&self, conn: &mut AnyConnection) -> Result<Option<u32>, DbError> {
        let counts: Vec<(i64, i64)> =
            sqlx::query_as("SELECT level, COUNT(*) FROM merkle_nodes GROUP BY level").fetch_all(&mut *conn).await?;
        for (level, n) in counts {
            let k = (level as u32 / STRIDE).checked_sub(1).map(|k| k as usize);
            let expected = k.and_then(|k| self.made_at.get(k)).copied().unwrap_or(0);
            if n as u64 != expected || !(level as u32).is_multiple_of(STRIDE) {
                return Ok(Some(level as u32));
            }
        }
        Ok(None)
    }
}

/// Reads the stored tree, on one connection (a transaction's, or a pool's).
pub struct Reader<'c> {
    conn: &'c mut AnyConnection,
}

impl<'c> Reader<'c> {
    pub fn new(conn: &'c mut AnyConnection) -> Reader<'c> {
        Reader { conn }
    }

    /// The stored hashes `first .. first + count` of a stored level (0: the
    /// leaves), in order; an error when any is missing.
    async fn stored(&mut self, level: u32, first: u64, count: u64) -> Result<Vec<Hash>, DbError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let (first, last) = (first as i64, (first + count - 1) as i64);
        let rows: Vec<(Option<String>,)> = if level == 0 {
            sqlx::query_as("SELECT leaf_hash FROM audit_trail WHERE audit_position BETWEEN $1 AND $2 ORDER BY audit_position")
                .bind(first + 1)
                .bind(last + 1)
                .fetch_all(&mut *self.conn)
                .await?
        } else {
            sqlx::query_as("SELECT hash FROM merkle_nodes WHERE level = $1 AND idx BETWEEN $2 AND $3 ORDER BY idx")
                .bind(level as i64)
                .bind(first)
                .bind(last)
                .fetch_all(&mut *self.conn)
                .await?
        };
        let hashes: Vec<Hash> = rows.iter().filter_map(|(h,)| h.as_deref().and_then(decode)).collect();
        if hashes.len() as u64 != count {
            return Err(DbError::Corrupt(format!(
                "the Merkle tree lacks hashes at level {level}, {first}..={last}: run ledger projections rebuild"
            )));
        }
        Ok(hashes)
    }

    /// The root of the complete subtree of `2^level` leaves starting at
    /// leaf `index << level`.
    pub async fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, DbError> {
        let base = level - level % STRIDE;
        let below = level - base;
        let hashes = self.stored(base, index << below, 1 << below).await?;
        Ok(fold_perfect(hashes))
    }

    /// The root of leaves `lo .. hi`, where `lo` is a multiple of a power of
    /// two at least `hi - lo` (every range RFC 9162's recursion asks for).
    pub async fn range(&mut self, lo: u64, hi: u64) -> Result<Hash, DbError> {
        if hi <= lo {
            return Ok(empty_root());
        }
        // The range is complete subtrees, largest first (the set bits of
        // its size); the root folds them from the right.
        let mut parts = Vec::new();
        let mut at = lo;
        for level in (0..64u32).rev() {
            if (hi - lo) & (1 << level) != 0 {
                parts.push(self.perfect(level, at >> level).await?);
                at += 1 << level;
            }
        }
        let mut root = parts.pop().unwrap_or_else(empty_root);
        while let Some(left) = parts.pop() {
            root = node_hash(&left, &root);
        }
        Ok(root)
    }

    /// The root of the first `size` leaves.
    pub async fn root(&mut self, size: u64) -> Result<Hash, DbError> {
        self.range(0, size).await
    }

    /// The audit path of leaf `index` in the tree of the first `size`
    /// leaves (RFC 9162 2.1.3.1), from the leaf up.
    pub async fn inclusion(&mut self, index: u64, size: u64) -> Result<Vec<Hash>, DbError> {
        let mut path = Vec::new();
        // The subtrees from the root down to the leaf; collected first,
        // read after, and listed leaf first.
        let (mut lo, mut hi) = (0, size);
        let mut siblings = Vec::new();
        while hi - lo > 1 {
            let k = split(hi - lo);
            if index < lo + k {
                siblings.push((lo + k, hi));
                hi = lo + k;
            } else {
                siblings.push((lo, lo + k));
                lo += k;
            }
        }
        for (a, b) in siblings.into_iter().rev() {
            path.push(self.range(a, b).await?);
        }
        Ok(path)
    }

    /// The proof that the tree of the first `old` leaves is a prefix of the
    /// tree of the first `new` (RFC 9162 2.1.4.1), `0 < old <= new`.
    pub async fn consistency(&mut self, old: u64, new: u64) -> Result<Vec<Hash>, DbError> {
        if old == new {
            return Ok(Vec::new());
        }
        let (mut lo, mut hi, mut m, mut whole) = (0, new, old, true);
        let mut ranges = Vec::new();
        loop {
            let n = hi - lo;
            if m == n {
                if !whole {
                    ranges.push((lo, hi));
                }
                break;
            }
            let k = split(n);
            if m <= k {
                ranges.push((lo + k, hi));
                hi = lo + k;
            } else {
                ranges.push((lo, lo + k));
                lo += k;
                m -= k;
                whole = false;
            }
        }
        let mut proof = Vec::new();
        for (a, b) in ranges.into_iter().rev() {
            proof.push(self.range(a, b).await?);
        }
        Ok(proof)
    }
}

/// Adds leaves `size .. size + leaves.len()` to the stored tree: their
/// hashes are already in the trail's rows; this writes the stored subtrees
/// they complete. `size` is the tree's size before them.
pub async fn extend(conn: &mut AnyConnection, size: u64, leaves: Vec<Hash>) -> Result<(), DbError> {
    let (mut before, mut level, mut fresh) = (size, 0u32, leaves);
    loop {
        let after = before + fresh.len() as u64;
        let (first, end) = (before / FAN, after / FAN);
        if end <= first {
            return Ok(());
        }
        // The first completed block may begin before these hashes.
        let mut hashes = Reader::new(conn).stored(level, first * FAN, before - first * FAN).await?;
        hashes.extend(fresh);
        let nodes: Vec<Hash> = hashes.chunks_exact(FAN as usize).map(|block| fold_perfect(block.to_vec())).collect();
        level += STRIDE;
        let rows: Vec<Vec<Val>> = nodes
            .iter()
            .enumerate()
            .map(|(i, h)| vec![Val::Int(level as i64), Val::Int((first + i as u64) as i64), encode(h).into()])
            .collect();
        rows::insert(conn, "INSERT INTO merkle_nodes (level, idx, hash)", "", &rows).await?;
        (before, fresh) = (first, nodes);
    }
}

/// Whether `path` proves leaf `index` with hash `leaf` in the tree of
/// `size` leaves whose root is `root` (RFC 9162 2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s, mut r) = (index, size - 1, *leaf);
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && &r == root
}

/// Whether `proof` shows the tree of `old` leaves with root `old_root` to
/// be a prefix of the tree of `new` leaves with root `new_root` (RFC 9162
/// 2.1.4.2).
pub fn verify_consistency(old: u64, new: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> bool {
    if old == 0 || old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if old.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let Some((first, rest)) = path.split_first() else { return false };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    &fr == old_root && &sr == new_root && s == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9162's definitions, recursively, over all the leaves.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = split(n as u64) as usize;
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    fn subproof(m: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if whole { Vec::new() } else { vec![mth(leaves)] };
        }
        let k = split(n as u64) as usize;
        if m <= k {
            let mut p = subproof(m, &leaves[..k], whole);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = subproof(m - k, &leaves[k..], false);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("leaf {i}").as_bytes())).collect()
    }

    #[test]
    fn the_hashes_are_rfc_9162s() {
        // The empty tree's root is the hash of nothing; a leaf and a node
        // are told apart by their first byte.
        assert_eq!(hex::encode(empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(hex::encode(leaf_hash(b"")), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(a);
        h.update(b);
        assert_eq!(node_hash(&a, &b), <Hash>::from(h.finalize()));
    }

    #[test]
    fn the_verifiers_accept_the_definitions_proofs_and_nothing_else() {
        let all = leaves(70);
        for n in 1..=all.len() {
            let tree = &all[..n];
            let root = mth(tree);
            for m in 0..n {
                let p = path(m, tree);
                assert!(verify_inclusion(m as u64, n as u64, &tree[m], &p, &root), "leaf {m} of {n}");
                assert!(!verify_inclusion(m as u64, n as u64, &leaf_hash(b"other"), &p, &root));
                if n > 1 {
                    assert!(!verify_inclusion(((m + 1) % n) as u64, n as u64, &tree[m], &p, &root), "another index");
                }
            }
            for m in 1..=n {
                let p = subproof(m, tree, true);
                let old = mth(&all[..m]);
                assert!(verify_consistency(m as u64, n as u64, &old, &root, &p), "{m} -> {n}");
                if m < n {
                    assert!(!verify_consistency(m as u64, n as u64, &leaf_hash(b"x"), &root, &p), "wrong old root {m} -> {n}");
                    assert!(!verify_consistency(m as u64, n as u64, &old, &leaf_hash(b"x"), &p), "wrong new root {m} -> {n}");
                }
            }
        }
    }

    #[test]
    fn the_frontier_has_the_definitions_root_at_every_size() {
        let all = leaves(70);
        let mut frontier = Frontier::default();
        assert_eq!(frontier.root(), empty_root());
        for n in 1..=all.len() {
            frontier.push(all[n - 1]);
            assert_eq!(frontier.root(), mth(&all[..n]), "{n}");
        }
    }

    /// An in-memory database with the two tables the tree is stored in.
    async fn tree_tables() -> AnyConnection {
        sqlx::any::install_default_drivers();
        let mut conn = <AnyConnection as sqlx::Connection>::connect("sqlite::memory:").await.unwrap();
        for sql in [
            "CREATE TABLE audit_trail (audit_position BIGINT PRIMARY KEY, leaf_hash TEXT)",
            "CREATE TABLE merkle_nodes (level INTEGER NOT NULL, idx BIGINT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (level, idx))",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        conn
    }

    async fn recheck(conn: &mut AnyConnection, all: &[Hash]) -> (Option<(u32, u64)>, Option<u32>) {
        let mut r = Recomputed::default();
        for leaf in all {
            r.push(*leaf);
        }
        (r.compare(conn).await.unwrap(), r.extra(conn).await.unwrap())
    }

    #[tokio::test]
    async fn recomputing_finds_an_edited_a_missing_and_an_extra_stored_subtree() {
        let mut conn = tree_tables().await;
        let all = leaves(600);
        extend(&mut conn, 0, all.clone()).await.unwrap();
        assert_eq!(recheck(&mut conn, &all).await, (None, None));
        let (kept,): (String,) =
            sqlx::query_as("SELECT hash FROM merkle_nodes WHERE level = 4 AND idx = 3").fetch_one(&mut conn).await.unwrap();
        sqlx::query("UPDATE merkle_nodes SET hash = $1 WHERE level = 4 AND idx = 3")
            .bind(encode(&leaf_hash(b"x")))
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(recheck(&mut conn, &all).await.0, Some((4, 3)));
        sqlx::query("DELETE FROM merkle_nodes WHERE level = 4 AND idx = 3").execute(&mut conn).await.unwrap();
        assert_eq!(recheck(&mut conn, &all).await.0, Some((4, 3)));
        sqlx::query("INSERT INTO merkle_nodes (level, idx, hash) VALUES (4, 3, $1)").bind(kept).execute(&mut conn).await.unwrap();
        assert_eq!(recheck(&mut conn, &all).await, (None, None));
        sqlx::query("INSERT INTO merkle_nodes (level, idx, hash) VALUES (8, 7, 'x')").execute(&mut conn).await.unwrap();
        assert_eq!(recheck(&mut conn, &all).await.1, Some(8));
    }

    #[test]
    fn fold_perfect_is_the_root_of_a_perfect_tree() {
        let all = leaves(16);
        assert_eq!(fold_perfect(all.clone()), mth(&all));
        assert_eq!(split(2), 1);
        assert_eq!(split(5), 4);
        assert_eq!(split(8), 4);
        assert_eq!(split(9), 8);
    }

    /// What the stored tree answers equals the definitions, for every size
    /// up to a few stored levels and for batches of every shape.
    #[tokio::test]
    async fn the_stored_tree_answers_as_the_definitions() {
        let mut conn = tree_tables().await;
        let all = leaves(300);
        let mut size = 0usize;
        // Batches of 1, 2, 3, ... leaves, as the projector appends them.
        let mut batch = 1;
        while size < all.len() {
            let end = (size + batch).min(all.len());
            for (i, h) in all[size..end].iter().enumerate() {
                sqlx::query("INSERT INTO audit_trail (audit_position, leaf_hash) VALUES ($1, $2)")
                    .bind((size + i + 1) as i64)
                    .bind(encode(h))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            extend(&mut conn, size as u64, all[size..end].to_vec()).await.unwrap();
            size = end;
            batch = batch % 37 + 1;
        }
        let mut reader = Reader::new(&mut conn);
        for n in [1usize, 2, 3, 15, 16, 17, 31, 32, 33, 255, 256, 257, 299, 300] {
            let tree = &all[..n];
            assert_eq!(reader.root(n as u64).await.unwrap(), mth(tree), "root of {n}");
            for m in [0, n / 3, n / 2, n - 1] {
                assert_eq!(reader.inclusion(m as u64, n as u64).await.unwrap(), path(m, tree), "path of {m} in {n}");
            }
            for m in [1, n / 2, n - 1, n] {
                if m >= 1 {
                    assert_eq!(reader.consistency(m as u64, n as u64).await.unwrap(), subproof(m, tree, true), "{m} -> {n}");
                }
            }
        }
    }
}
