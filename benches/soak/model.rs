//! What the soak expects the registry to hold: every file a publish got 201 for (its id,
//! package, coordinates, SHA-256 and size, when its publish ran) and what became of it, judged
//! from the answers alone. A file is `Live` until a delete of it or of its package answers 2xx;
//! a file whose publish overlapped its package's delete may or may not have gone with it
//! (`Either`). Checks made while the load runs (a 404 for a settled live file, a body no
//! publish sent) are recorded as violations; the end check is in `verify`.

use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::time::Instant;

/// Package name, version, file name.
pub type Coord = (String, String, String);

/// What became of a published file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Live,
    Deleted,
    /// Published while its package was being deleted: present or gone are both right.
    Either,
}

#[derive(Debug, Clone)]
pub struct FileRec {
    pub id: i64,
    pub package_id: i64,
    pub coord: Coord,
    pub sha256: String,
    pub size: u64,
    /// When its publish was sent and answered.
    pub published: (Instant, Instant),
    pub fate: Fate,
}

#[derive(Debug, Clone)]
pub struct PackageRec {
    pub name: String,
    pub version: String,
    pub files: Vec<i64>,
    /// When the delete that answered 204 was sent and answered.
    pub deleted: Option<(Instant, Instant)>,
}

/// A set with O(1) insert, remove and random pick.
pub struct Bag<T> {
    items: Vec<T>,
    at: HashMap<T, usize>,
}

impl<T: Copy + Eq + Hash> Bag<T> {
    fn new() -> Self {
        Self {
            items: Vec::new(),
            at: HashMap::new(),
        }
    }

    fn insert(&mut self, item: T) {
        if !self.at.contains_key(&item) {
            self.at.insert(item, self.items.len());
            self.items.push(item);
        }
    }

    fn remove(&mut self, item: T) {
        if let Some(i) = self.at.remove(&item) {
            self.items.swap_remove(i);
            if let Some(moved) = self.items.get(i) {
                self.at.insert(*moved, i);
            }
        }
    }

    fn pick(&self, rng: &mut impl Rng) -> Option<T> {
        (!self.items.is_empty()).then(|| self.items[rng.gen_range(0..self.items.len())])
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }
}

/// The expected state, shared by the workers behind one mutex.
pub struct Model {
    pub files: HashMap<i64, FileRec>,
    pub packages: HashMap<i64, PackageRec>,
    /// Every SHA-256 ever sent to a coordinate, in flight included.
    pub sent: HashMap<Coord, HashSet<String>>,
    /// Coordinates ever sent to.
    pub coords: Vec<Coord>,
    /// The files published at each coordinate.
    by_coord: HashMap<Coord, Vec<i64>>,
    /// The earliest delete sent for a file or a package, whatever it answered.
    delete_sent: HashMap<Target, Instant>,
    pub live_files: Bag<i64>,
    pub live_packages: Bag<i64>,
    pub violations: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    File(i64),
    Package(i64),
}

impl Model {
    pub fn new() -> Self {
        Self {
            files: HashMap::new(),
            packages: HashMap::new(),
            sent: HashMap::new(),
            coords: Vec::new(),
            by_coord: HashMap::new(),
            delete_sent: HashMap::new(),
            live_files: Bag::new(),
            live_packages: Bag::new(),
            violations: Vec::new(),
        }
    }

    pub fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    /// A publish of `sha256` to `coord` is about to be sent.
    pub fn sending(&mut self, coord: &Coord, sha256: &str) {
        let sent = self.sent.entry(coord.clone()).or_insert_with(|| {
            self.coords.push(coord.clone());
            HashSet::new()
        });
        sent.insert(sha256.to_string());
    }

    /// A publish answered 201 with this record.
    pub fn published(&mut self, mut file: FileRec) {
        if let Some(earlier) = self.files.get(&file.id) {
            let what = format!(
                "file id {} given twice: to {:?} and to {:?}",
                file.id, earlier.coord, file.coord
            );
            self.violations.push(what);
        }
        let (name, version, _) = file.coord.clone();
        let package = self
            .packages
            .entry(file.package_id)
            .or_insert_with(|| PackageRec {
                name: name.clone(),
                version: version.clone(),
                files: Vec::new(),
                deleted: None,
            });
        if (package.name.as_str(), package.version.as_str()) != (&name, &version) {
            let what = format!(
                "file {} of {name}/{version} was published into package {} ({}/{})",
                file.id, file.package_id, package.name, package.version
            );
            self.violations.push(what);
        }
        package.files.push(file.id);
        self.by_coord
            .entry(file.coord.clone())
            .or_default()
            .push(file.id);
        match package.deleted {
            None => {
                self.live_packages.insert(file.package_id);
                self.live_files.insert(file.id);
            }
            Some((_, answered)) if file.published.0 > answered => {
                let what = format!(
                    "file {} was published into package {} after its delete had answered 204",
                    file.id, file.package_id
                );
                self.violations.push(what);
                file.fate = Fate::Either;
            }
            Some(_) => file.fate = Fate::Either,
        }
        self.files.insert(file.id, file);
    }

    /// A delete of `target` is about to be sent.
    pub fn deleting(&mut self, target: Target, at: Instant) {
        self.delete_sent.entry(target).or_insert(at);
    }

    /// A delete of package `id`, sent at `sent`, answered 204 now.
    pub fn package_deleted(&mut self, id: i64, sent: Instant, answered: Instant) {
        self.live_packages.remove(id);
        let Some(package) = self.packages.get_mut(&id) else {
            return;
        };
        package.deleted = Some((sent, answered));
        for file_id in package.files.clone() {
            let file = self.files.get_mut(&file_id).unwrap();
            self.live_files.remove(file_id);
            if file.fate == Fate::Deleted {
                continue;
            }
            // Answered before the delete was sent: certainly gone. Overlapping: either.
            file.fate = if file.published.1 < sent {
                Fate::Deleted
            } else {
                Fate::Either
            };
        }
    }

    /// A delete of file `id` answered 204.
    pub fn file_deleted(&mut self, id: i64) {
        self.live_files.remove(id);
        if let Some(file) = self.files.get_mut(&id) {
            file.fate = Fate::Deleted;
        }
    }

    /// A download of `coord`, sent at `sent` and answered at `answered`, got 404: a violation
    /// if a file there was live, published before the download was sent, and no delete of it
    /// or its package had been sent before the answer.
    pub fn check_not_found(&mut self, coord: &Coord, sent: Instant, answered: Instant) {
        let deleted_before = |t: Target| self.delete_sent.get(&t).is_some_and(|&at| at < answered);
        let at = self
            .by_coord
            .get(coord)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let lost = at.iter().find(|id| {
            let f = &self.files[id];
            f.fate == Fate::Live
                && f.published.1 < sent
                && !deleted_before(Target::File(f.id))
                && !deleted_before(Target::Package(f.package_id))
        });
        if let Some(id) = lost {
            let what = format!("GET {coord:?} answered 404 while file {id} was live");
            self.violations.push(what);
        }
    }

    /// A download of `coord` answered 200 with a body of this SHA-256.
    pub fn check_body(&mut self, coord: &Coord, sha256: &str) {
        if !self.sent.get(coord).is_some_and(|s| s.contains(sha256)) {
            let what = format!("GET {coord:?} served bytes (SHA-256 {sha256}) no publish sent");
            self.violations.push(what);
        }
    }

    /// A list showed file `id` of package `package_id` with this SHA-256 and size.
    pub fn check_listed(&mut self, id: i64, package_id: i64, sha256: &str, size: u64) {
        if let Some(f) = self.files.get(&id)
            && (f.package_id, f.sha256.as_str(), f.size) != (package_id, sha256, size)
        {
            let what = format!(
                "file {id} listed as package {package_id}, {sha256}, {size} B; published as \
                 package {}, {}, {} B",
                f.package_id, f.sha256, f.size
            );
            self.violations.push(what);
        }
    }

    pub fn pick_live_file(&self, rng: &mut impl Rng) -> Option<FileRec> {
        self.live_files.pick(rng).map(|id| self.files[&id].clone())
    }

    pub fn pick_live_package(&self, rng: &mut impl Rng) -> Option<i64> {
        self.live_packages.pick(rng)
    }

    pub fn pick_coord(&self, rng: &mut impl Rng) -> Option<Coord> {
        (!self.coords.is_empty()).then(|| self.coords[rng.gen_range(0..self.coords.len())].clone())
    }
}
