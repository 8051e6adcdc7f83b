//! Objects scripts hold by a numeric handle (cookie jars, parsed HTML
//! documents): a slab with a bound on how many are alive at once. The
//! JavaScript object that holds a handle frees it when it is collected
//! (a `FinalizationRegistry`).

/// At most `max` values, each under the `u32` handle it was given.
#[derive(Debug)]
pub struct Handles<T> {
    slab: slab::Slab<T>,
    max: usize,
}

impl<T> Handles<T> {
    pub fn new(max: usize) -> Handles<T> {
        Handles {
            slab: slab::Slab::new(),
            max,
        }
    }

    /// Keeps `value`; its handle, or `None` when `max` are alive.
    pub fn add(&mut self, value: T) -> Option<u32> {
        if self.slab.len() >= self.max {
            return None;
        }
        let key = self.slab.vacant_key();
        let handle = u32::try_from(key).ok()?;
        self.slab.insert(value);
        Some(handle)
    }

    /// Frees `handle` (a handle freed already, or never given, is ignored).
    pub fn release(&mut self, handle: u32) {
        self.slab.try_remove(handle as usize);
    }

    pub fn get(&self, handle: u32) -> Option<&T> {
        self.slab.get(handle as usize)
    }

    pub fn get_mut(&mut self, handle: u32) -> Option<&mut T> {
        self.slab.get_mut(handle as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_reusing_freed_handles() {
        let mut h = Handles::new(3);
        let [a, b, c] = [1, 2, 3].map(|v| h.add(v).expect("room"));
        assert_eq!(h.add(4), None);
        h.release(b);
        h.release(b);
        assert_eq!(h.get(b), None);
        assert_eq!(h.add(5), Some(b));
        assert_eq!(
            (h.get(a), h.get(b), h.get(c)),
            (Some(&1), Some(&5), Some(&3))
        );
        if let Some(v) = h.get_mut(c) {
            *v = 6;
        }
        assert_eq!(h.get(c), Some(&6));
        h.release(99);
    }
}
