//! Data only its owner can read, whatever the umask: every directory a store creates is 0700
//! and every data file 0600 (on Unix; elsewhere the platform's defaults).

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::path::Path;

/// Create `path` and any missing parents, each 0700.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Options that create a new file 0600 (and open an existing one as it is).
pub fn file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Create the empty file `path`, 0600, unless it exists.
pub fn create_file(path: &Path) -> io::Result<()> {
    file_options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    Ok(())
}

/// A directory the store owns, made private if an older depot created it readable by all.
pub fn tighten_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
