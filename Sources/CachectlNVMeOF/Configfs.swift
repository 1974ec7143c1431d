import CachectlSystem
import Glibc

/// Directory, attribute and symlink operations on configfs, each named in the
/// errors it throws. Mutations go through ``ChangeLog`` so `check` runs record
/// what they would do and change nothing.
enum Configfs {
    /// Entry names of a directory, in readdir(3) order (the order nvmetcli's
    /// os.listdir sees), without `.` and `..`. Missing directory: empty.
    static func list(_ path: String) -> [String] {
        (try? Path.entries(of: path)) ?? []
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
    }

    /// An attribute's value with surrounding whitespace removed (Python's strip()).
    static func read(_ path: String) -> String? { KernelAttribute.read(path) }

    /// Attribute groups as nvmetcli's `dump()` reads them: every regular file
    /// named `GROUP_NAME` that the owner may write, value stripped.
    static func groups(_ dir: String, _ names: [String]) -> AttributeGroups {
        var groups: AttributeGroups = [:]
        let files = list(dir)
        for group in names {
            var attrs: [String: String] = [:]
            for file in files where file.hasPrefix(group + "_") {
                var st = stat()
                guard stat(dir + "/" + file, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_mode & S_IWUSR != 0 else {
                    continue
                }
                attrs[String(file.dropFirst(group.count + 1))] = read(dir + "/" + file) ?? ""
            }
            groups[group] = attrs
        }
        return groups
    }

    /// The `enable` file as a number, when the object has one.
    static func enable(_ dir: String) -> Int? {
        read(dir + "/enable").flatMap { Int($0) }
    }
}

/// configfs steps, each recorded in the log and undone by its rollback.
extension ChangeLog {
    func mkdir(_ path: String, what: String) throws {
        try perform("create \(what)", revert: { Glibc.rmdir(path) }) {
            _ = try sys("mkdir", path) { Glibc.mkdir(path, 0o755) }
        }
    }

    func rmdir(_ path: String, what: String) throws {
        try perform("remove \(what)") {
            _ = try sys(
                "rmdir", path, hint: "configfs refuses while it still has links or children; run cachectl nvmet list"
            ) {
                Glibc.rmdir(path)
            }
        }
    }

    func symlink(_ target: String, at link: String, what: String) throws {
        try perform("link \(what)", revert: { Glibc.unlink(link) }) {
            _ = try sys("symlink \(target) at", link) { Glibc.symlink(target, link) }
        }
    }

    func unlink(_ link: String, what: String) throws {
        try perform("unlink \(what)") {
            _ = try sys("unlink", link) { Glibc.unlink(link) }
        }
    }

    /// Writes an attribute when its value differs; returns whether it did.
    @discardableResult
    func set(_ path: String, to value: String, what: String, revertTo old: String? = nil) throws -> Bool {
        let current = Configfs.read(path)
        if current == value { return false }
        try perform("\(what) = \(value)", revert: old.map { old in { try? KernelAttribute.write(old, to: path) } }) {
            try KernelAttribute.write(value, to: path)
        }
        return true
    }
}
