/**
 * argv builders for the tools the directory backend runs (coreutils 9.1, GNU tar 1.34). Pure: they
 * only build arrays; parsers live in parse.ts.
 */

/** Copies the tree `source` to `dest` (which must not exist), keeping everything a container sees. */
export function copyTree(source: string, dest: string): string[] {
  // -a: recursive, symlinks as symlinks, keep modes, owners, timestamps, hard links, xattrs, ACLs.
  // --reflink=auto: share extents where the filesystem can (xfs, btrfs), else copy the data.
  // --: the paths are never options.
  return ['cp', '-a', '--reflink=auto', '--', source, dest];
}

/** Flushes the whole filesystem holding `path` (syncfs): a tree is on disk before it is published. */
export function syncFilesystem(path: string): string[] {
  return ['sync', '--file-system', path];
}

/** Apparent bytes of each tree in `paths`, NUL-separated lines "BYTES\tPATH". */
export function diskUsage(paths: readonly string[]): string[] {
  // --summarize: one total per argument. --bytes: apparent size in bytes. --null: NUL-ended lines.
  return ['du', '--summarize', '--bytes', '--null', '--', ...paths];
}

/** du exits 1 when some argument could not be read (a volume destroyed meanwhile); the others are printed. */
export const DU_SOME_UNREADABLE = 1;

// Both sides of the archive: POSIX (pax) format carries long names, nanosecond mtimes and xattrs;
// owners travel as numbers, since names may map to other ids on another host.
const TAR_COMMON = ['--format=posix', '--numeric-owner', '--xattrs', '--xattrs-include=*', '--acls'];

/**
 * Archives, from directory `root`, exactly the entries named on stdin (NUL-separated, relative,
 * "./"-prefixed) to stdout. The options before --files-from are positional and must stay there.
 */
export function tarCreate(root: string): string[] {
  return [
    'tar',
    '--create',
    '--file=-',
    `--directory=${root}`,
    ...TAR_COMMON,
    '--sparse', // holes in sparse files stay holes
    // 10 KiB writes (the archive's end is padded to that): 1 (512 bytes) would make small deltas
    // smaller but cuts tar's throughput to a quarter; larger records pad small deltas more.
    '--blocking-factor=20',
    '--pax-option=delete=atime,delete=ctime', // only mtime matters; keeps headers small
    '--no-recursion', // a directory entry is the directory alone: the list names every changed entry
    '--null', // the list is NUL-separated
    '--verbatim-files-from', // a name starting with "-" is a name, not an option
    '--files-from=-',
  ];
}

/** Extracts an archive from stdin into `root`, replacing what is there and keeping owners and modes. */
export function tarExtract(root: string): string[] {
  return [
    'tar',
    '--extract',
    '--file=-',
    `--directory=${root}`,
    ...TAR_COMMON,
    '--same-owner', // owners from the archive (the default for root, said explicitly)
    '--same-permissions', // modes from the archive, not reduced by the umask
    '--overwrite-dir', // an existing directory takes the archive's metadata
  ];
}
