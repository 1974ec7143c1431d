import Glibc

extension Path {
    /// The names in a directory, in readdir(3) order, without `.` and `..`.
    public static func entries(of path: String) throws(CachectlError) -> [String] {
        guard let dir = opendir(path) else { throw CachectlError("opendir", path: path, errno: errno) }
        defer { closedir(dir) }
        return names(in: dir)
    }

    /// readlink(2): what the symlink at `path` points to (links before its last
    /// component are followed).
    public static func linkTarget(of path: String) throws(CachectlError) -> String {
        guard let target = readingLink({ readlink(path, $0, $1) }) else {
            throw CachectlError("readlink", path: path, errno: errno)
        }
        return target
    }

    /// One readlink(2)-shaped call into a PATH_MAX buffer; nil (errno set) when it fails.
    static func readingLink(_ call: (UnsafeMutablePointer<CChar>, Int) -> Int) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = buffer.withUnsafeMutableBufferPointer { call($0.baseAddress!, $0.count - 1) }
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The names readdir(3) gives from an open directory stream, without `.` and `..`.
    static func names(in dir: OpaquePointer) -> [String] {
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// mkdir -p: makes `path` and any missing parents with `mode`. Returns true
    /// when it created the last component; a non-directory in the way is ENOTDIR.
    @discardableResult
    public static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws(CachectlError) -> Bool {
        var st = stat()
        if stat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else {
                throw CachectlError("mkdir", path: path, errno: ENOTDIR, hint: "a file is in the way; move it")
            }
            return false
        }
        let parent = directory(of: path)
        if parent != path && parent != "/" && parent != "." { try makeDirectory(parent, mode: mode) }
        if mkdir(path, mode) != 0 {
            let code = errno  // saved before anything else can overwrite it
            if code == EEXIST { return false }  // made by someone else meanwhile
            throw CachectlError("mkdir", path: path, errno: code)
        }
        return true
    }
}
