import CachectlMount
import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc
import Testing

@testable import CachectlTiers

/// Issue 13: what root does in trees another user controls, copies that keep
/// who may read them, and runs that converge after a crash. Real tmpfs tiers,
/// real ownership; run as root in a private mount namespace.
@Suite(.serialized, .rootInPrivateMountNamespace)
struct TierHardeningTests {
    static let nobody: uid_t = 65534

    func tmpfs(_ s: Scratch, _ name: String, size: UInt64 = 64 << 20) -> TierSpec {
        TierSpec(name: name, type: .tmpfs, size: ByteSize(size), path: s.tierPath(name))
    }

    /// The models directory belongs to an unprivileged user (as ollama's does), and
    /// the scratch tree is searchable by that user.
    func modelsOwnedByNobody(_ s: Scratch) throws {
        chmod(s.root, 0o755)
        try Path.makeDirectory(s.models)
        #expect(chown(s.models, Self.nobody, Self.nobody) == 0)
    }

    // MARK: - class 1: links another user controls

    @Test func aModelsSubdirectorySwappedForALinkIsNeverFollowed() throws {
        let s = try Scratch()
        try modelsOwnedByNobody(s)
        _ = try s.writeOllamaModel(name: "llama3", tag: "8b", weights: randomBytes(1 << 20, seed: 3))
        _ = try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold)
        _ = try s.tiers.createTier(tmpfs(s, "fast"))
        // A root-owned directory (think /etc/profile.d) ...
        let victim = s.root + "/victim"
        #expect(mkdir(victim, 0o755) == 0)
        // ... that the models directory's owner links in place of one of its directories.
        #expect(rename(s.models + "/ollama/blobs", s.models + "/ollama/blobs.old") == 0)
        #expect(symlink(victim, s.models + "/ollama/blobs") == 0)
        lchown(s.models + "/ollama/blobs", Self.nobody, Self.nobody)

        #expect(throws: CachectlError.self) { try s.tiers.promote("llama3:8b", tier: "fast") }
        #expect(try Path.entries(of: victim) == [])
        // models sync (configureModels again) and health repair links: refused too.
        #expect(throws: CachectlError.self) { try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold) }
        #expect(try Path.entries(of: victim) == [])
        _ = try? s.tiers.health()
        #expect(try Path.entries(of: victim) == [])
        #expect((try? Path.linkTarget(of: s.models + "/ollama/blobs")) == victim)  // left as the user made it
    }

    /// The cold store may belong to another user too: a manifest there that is a
    /// link to a root-only file, or a FIFO, is reported as a problem, never read.
    @Test func ollamaManifestsAreReadOnlyFromRegularFilesBelowTheStore() throws {
        let s = try Scratch()
        _ = try s.writeOllamaModel(name: "good", tag: "1b", weights: randomBytes(4096, seed: 1))
        let manifests = s.cold + "/ollama/manifests/registry.ollama.ai/library"
        try Path.makeDirectory(manifests + "/leak")
        try Path.makeDirectory(manifests + "/fifo")
        let secret = s.root + "/secret.json"
        _ = try AtomicFile.write(#"{"schemaVersion":2,"layers":[]}"#, to: secret, mode: 0o600)
        #expect(symlink(secret, manifests + "/leak/latest") == 0)
        #expect(mkfifo(manifests + "/fifo/latest", 0o644) == 0)

        let models = try ModelCatalog.scan(coldStore: s.cold)  // returns: the FIFO is not opened for a blocking read
        let byName = Dictionary(uniqueKeysWithValues: models.map { ($0.name, $0) })
        #expect(byName["good:1b"]?.problem == nil)
        #expect(byName["leak:latest"]?.problem?.contains("unreadable manifest") == true)
        #expect(byName["fifo:latest"].map { $0.problem != nil } ?? true)  // skipped, or a problem: never content
        // Swapped for a FIFO after the listing: opened without blocking and refused.
        #expect(throws: CachectlError.self) {
            try OllamaStore.readManifest(
                store: s.cold + "/ollama", relative: "manifests/registry.ollama.ai/library/fifo/latest")
        }
    }

    // MARK: - class 2: copies keep owner, mode and ACL

    @Test func aPromotedCopyKeepsOwnerModeAndACL() throws {
        let s = try Scratch()
        try modelsOwnedByNobody(s)
        try s.write("private.gguf", bytes: randomBytes(256 << 10, seed: 11))
        try s.write("shared.gguf", bytes: randomBytes(256 << 10, seed: 12))
        #expect(chown(s.cold + "/private.gguf", Self.nobody, Self.nobody) == 0)
        #expect(chmod(s.cold + "/private.gguf", 0o600) == 0)
        // shared.gguf: 0640 nobody:nobody plus an ACL entry for uid 4242 (read).
        #expect(chown(s.cold + "/shared.gguf", Self.nobody, Self.nobody) == 0)
        let acl = Self.acl(owner: 6, users: [(4242, 4)], group: 4, mask: 4, other: 0)
        try FileAccess.setAccessControlList(acl, on: s.cold + "/shared.gguf")
        let sourceACL = try FileAccess.accessControlList(of: OpenFile(s.cold + "/shared.gguf"))
        #expect(sourceACL != nil)

        _ = try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold)
        _ = try s.tiers.createTier(tmpfs(s, "fast"))
        _ = try s.tiers.promote("private.gguf", tier: "fast")
        _ = try s.tiers.promote("shared.gguf", tier: "fast")

        var st = stat()
        #expect(stat(s.tierPath("fast") + "/private.gguf", &st) == 0)
        #expect(st.st_mode & 0o7777 == 0o600 && st.st_uid == Self.nobody && st.st_gid == Self.nobody)
        #expect(stat(s.tierPath("fast") + "/shared.gguf", &st) == 0)
        #expect(st.st_mode & 0o7777 == 0o640 && st.st_uid == Self.nobody)
        #expect(try FileAccess.accessControlList(of: OpenFile(s.tierPath("fast") + "/shared.gguf")) == sourceACL)
    }

    @Test func aColdStoreLinkToAFileTheModelsOwnerCannotReadIsRefused() throws {
        let s = try Scratch()
        try modelsOwnedByNobody(s)
        let secret = s.root + "/secret"
        _ = try AtomicFile.write(randomBytes(64 << 10, seed: 9), to: secret, mode: 0o600)  // root-only
        #expect(symlink(secret, s.cold + "/secret.gguf") == 0)
        _ = try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold)
        _ = try s.tiers.createTier(tmpfs(s, "fast"))

        #expect(throws: CachectlError.self) { try s.tiers.promote("secret.gguf", tier: "fast") }
        #expect(try Path.entries(of: s.tierPath("fast")) == [])
        #expect(try TierStateFile(path: s.state).load().placements.isEmpty)
    }

    // MARK: - class 3: wider than asked

    @Test func aTierIsNeverMountedOverFiles() throws {
        let s = try Scratch()
        let spec = tmpfs(s, "doc")
        try Path.makeDirectory(spec.path)
        _ = try AtomicFile.write("keep me\n", to: spec.path + "/README")
        #expect(throws: CachectlError.self) { try s.tiers.createTier(spec, check: true) }
        do {
            _ = try s.tiers.createTier(spec)
            Issue.record("a tier was mounted over a populated directory")
        } catch let error as CachectlError {
            #expect(
                error.errno == ENOTEMPTY && error.description.contains("README") && error.description.contains("hide"))
        }
        #expect(try MountTable.entry(at: spec.path) == nil)
        #expect(try AtomicFile.readText(spec.path + "/README") == "keep me\n")
        #expect(try s.tiers.listTiers().isEmpty)
    }

    // MARK: - class 4: convergence

    @Test func aTmpfsLeftByAKilledRunIsAdopted() throws {
        let s = try Scratch()
        let spec = tmpfs(s, "fast")
        try Path.makeDirectory(spec.path)
        // What bringUp had done when the process was killed: mounted, state not saved.
        try Mounter.mount(
            source: "cachectl-fast", target: spec.path, fstype: "tmpfs", flags: RAMTiers.mountFlags,
            data: "size=\(spec.size.bytes),mode=0755")
        #expect(try s.tiers.createTier(spec, check: true).action == "would adopt")
        let change = try s.tiers.createTier(spec)
        #expect(change.changed && change.action == "adopted")
        #expect(try s.tiers.listTiers().map(\.live) == [true])
        #expect(try s.tiers.createTier(spec).changed == false)
        #expect(try MountTable.mounted().filter { $0.target == spec.path }.count == 1)

        // A tmpfs cachectl did not mount is still refused.
        let other = tmpfs(s, "other")
        try Path.makeDirectory(other.path)
        try Mounter.mount(source: "tmpfs", target: other.path, fstype: "tmpfs", flags: 0, data: "size=1m")
        #expect(throws: CachectlError.self) { try s.tiers.createTier(other) }
    }

    @Test func tempCopiesOfAKilledPromoteAreRemoved() throws {
        let s = try Scratch()
        try s.write("a.gguf", bytes: randomBytes(256 << 10, seed: 5))
        _ = try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold)
        _ = try s.tiers.createTier(tmpfs(s, "fast"))
        let tier = s.tierPath("fast")
        // A PID that has exited, and a live process that is not cachectl.
        let dead = try #require(pid_t(try ExternalCommand(["sh", "-c", "echo $$"]).run().stdout.filter(\.isNumber)))
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        try sleeper.run()
        defer { sleeper.terminate() }
        try Path.makeDirectory(tier + "/sub")
        _ = try AtomicFile.write(randomBytes(4096, seed: 1), to: tier + "/.a.gguf.cachectl-copy-\(dead)")
        _ = try AtomicFile.write(
            randomBytes(4096, seed: 2), to: tier + "/sub/.b.gguf.cachectl-copy-\(sleeper.processIdentifier)")
        _ = try AtomicFile.write(randomBytes(10, seed: 3), to: tier + "/sub/.notes")  // not ours: kept

        // And a temp link of a link swap killed before its rename.
        #expect(symlink(s.cold + "/a.gguf", s.models + "/.a.gguf.cachectl-link-\(dead)") == 0)
        #expect(try s.tiers.health(check: true).removedCopies.count == 2)
        #expect(access(tier + "/.a.gguf.cachectl-copy-\(dead)", F_OK) == 0)
        let report = try s.tiers.health()
        #expect(report.changed && report.removedCopies.count == 2)
        #expect(report.removedLinks == [s.models + "/.a.gguf.cachectl-link-\(dead)"])
        #expect((try? Path.linkTarget(of: s.models + "/.a.gguf.cachectl-link-\(dead)")) == nil)
        #expect(try Path.entries(of: tier).sorted() == ["sub"])
        #expect(try Path.entries(of: tier + "/sub") == [".notes"])

        // promote cleans its target tier before it copies.
        _ = try AtomicFile.write(randomBytes(4096, seed: 1), to: tier + "/.a.gguf.cachectl-copy-\(dead)")
        _ = try s.tiers.promote("a.gguf", tier: "fast")
        #expect(access(tier + "/.a.gguf.cachectl-copy-\(dead)", F_OK) != 0)
        #expect(access(tier + "/a.gguf", F_OK) == 0)
    }

    /// A POSIX ACL as the kernel stores it in `system.posix_acl_access`
    /// (version 2; entries of tag, permissions, id, sorted by tag then id).
    static func acl(owner: UInt16, users: [(UInt32, UInt16)], group: UInt16, mask: UInt16, other: UInt16) -> [UInt8] {
        var bytes: [UInt8] = []
        func u16(_ v: UInt16) { bytes += [UInt8(v & 0xff), UInt8(v >> 8)] }
        func u32(_ v: UInt32) {
            bytes += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff), UInt8((v >> 16) & 0xff), UInt8(v >> 24)]
        }
        func entry(_ tag: UInt16, _ perm: UInt16, _ id: UInt32) {
            u16(tag)
            u16(perm)
            u32(id)
        }
        u32(2)
        entry(0x01, owner, UInt32.max)
        for (id, perm) in users { entry(0x02, perm, id) }
        entry(0x04, group, UInt32.max)
        entry(0x10, mask, UInt32.max)
        entry(0x20, other, UInt32.max)
        return bytes
    }
}
