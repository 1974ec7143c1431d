import CachectlSystem
import Foundation
import Testing

/// `warm` says which strategy it used per source, and the options override it.
@Suite struct WarmStrategyCLITests {
    @Test func theDefaultStrategyForALocalFileIsReported() throws {
        let file = try ScratchFile(size: 3 << 20)
        let result = try CLI.run(["warm", "--json", file.path])
        #expect(result.status == 0)
        let json = try CLI.json(result)
        #expect(json["strategy"] as? String == "local: 16 readers x 512K contiguous, no hints, spliced")
        let files = try #require(json["files"] as? [[String: Any]])
        #expect(files.first?["source"] as? String == "local")
        let strategies = try #require(json["strategies"] as? [[String: Any]])
        #expect(strategies.first?["source"] as? String == "local")
        #expect(strategies.first?["files"] as? Int == 1)
    }

    @Test func optionsOverrideTheStrategyAndTheSummarySaysSo() throws {
        let file = try ScratchFile(size: 3 << 20)
        let result = try CLI.run([
            "warm", "--jobs", "3", "--chunk", "1M", "--layout", "interleaved", "--hints", file.path,
        ])
        #expect(result.status == 0)
        #expect(result.stdout.contains("read as local: 3 readers x 1M interleaved, hints"))
        let bad = try CLI.run(["warm", "--layout", "sideways", "--json", file.path])
        #expect(bad.status == 2)
        #expect((try CLI.json(bad)["msg"] as? String)?.contains("layout") == true)
    }

    /// Where the kernel refuses splice(2) (a file without `splice_read` answers EINVAL),
    /// each piece is copied instead. The refusal is real: a seccomp filter makes the
    /// kernel answer every splice(2) of the process with EINVAL, and the helper checks
    /// that before it runs cachectl.
    @Test func aFileThatCannotBeSplicedIsCopied() throws {
        let file = try ScratchFile(size: (5 << 20) + 12_345)
        let refuseSplice = """
            import ctypes, errno, os, platform, struct, sys
            arch, nr = {"x86_64": (0xC000003E, 275), "aarch64": (0xC00000B7, 76)}[platform.machine()]
            # seccomp_data: nr at 0, arch at 4. Another arch, another syscall: allowed.
            prog = [(0x20, 0, 0, 4), (0x15, 0, 3, arch), (0x20, 0, 0, 0), (0x15, 0, 1, nr),
                    (0x06, 0, 0, 0x00050000 | errno.EINVAL), (0x06, 0, 0, 0x7FFF0000)]
            code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in prog))
            class Fprog(ctypes.Structure):
                _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
            fprog = Fprog(len(prog), ctypes.addressof(code))
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
            assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
            assert libc.prctl(22, 2, ctypes.addressof(fprog), 0, 0) == 0  # PR_SET_SECCOMP, FILTER
            r, w = os.pipe()
            try:
                os.splice(os.open(sys.argv[1], os.O_RDONLY), w, 4096)
                sys.exit("splice was not refused")
            except OSError as e:
                if e.errno != errno.EINVAL: raise
            os.execv(sys.argv[1], sys.argv[1:])
            """
        let warmArguments = ["warm", "--json", "--transfer", "splice", "--jobs", "2", "--chunk", "1M", file.path]
        let result = try ExternalCommand(["/usr/bin/env", "python3", "-c", refuseSplice, CLI.binary] + warmArguments)
            .run()
        #expect(result.status == 0, "\(result.stderr)")
        let warm = try CLI.json(result)
        #expect(warm["bytes_read"] as? Int == (5 << 20) + 12_345)
        #expect(warm["residency_percent"] as? Double == 100)
        let residency = try CLI.json(try CLI.run(["residency", "--json", file.path]))
        #expect((residency["total"] as? [String: Any])?["resident"] as? Int == (5 << 20) + 12_345)
    }
}
