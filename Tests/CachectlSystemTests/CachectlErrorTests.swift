import CachectlSystem
import Glibc
import Testing

@Suite struct CachectlErrorTests {
    @Test func namesOperationPathErrnoAndHint() {
        let error = CachectlError("open", path: "/models/x.gguf", errno: EACCES)
        #expect(
            error.description
                == "open /models/x.gguf: Permission denied (EACCES); run as root, or check the permissions of the path")
    }

    @Test func sysThrowsWithSavedErrno() {
        #expect(throws: CachectlError("open", path: "/nonexistent/cachectl", errno: ENOENT)) {
            _ = try sys("open", "/nonexistent/cachectl") { open("/nonexistent/cachectl", O_RDONLY) }
        }
    }

    @Test(arguments: [
        (ENOENT, CachectlError.Code.notFound), (EACCES, .permission), (EPERM, .permission), (EBUSY, .busy),
        (EEXIST, .exists), (ENOSPC, .noSpace), (ENOSYS, .unsupported), (EIO, .io), (EINVAL, .kernel),
    ])
    func theCodeFollowsTheErrno(errno: Int32, code: CachectlError.Code) {
        #expect(CachectlError("stat", path: "/x", errno: errno).code == code)
    }

    @Test func onlyUsageErrorsExitTwo() {
        for code in CachectlError.Code.allCases {
            #expect(code.exitStatus == (code == .usage ? 2 : 1), "\(code)")
        }
    }

    /// The call's man page decides the hint: umount(2)'s EBUSY is about open files,
    /// mount(2)'s about what is already mounted.
    @Test func theHintIsTheSyscallsOwn() {
        #expect(CachectlError("umount", path: "/mnt/m", errno: EBUSY).hint?.contains("open") == true)
        #expect(CachectlError("mount tmpfs on", path: "/mnt/m", errno: EBUSY).hint?.contains("already mounted") == true)
        #expect(CachectlError("rename", path: "/a", errno: EXDEV).hint == "both paths must be on one filesystem")
        #expect(CachectlError("stat", path: "/a", errno: ENOENT).hint == "check that the path exists")
    }

    @Test func aFieldIsAKeyPathForYAMLAndAFlagForTheCLI() {
        let field: FieldPath = ["shares", 0, "nconnect"]
        #expect(field.description == "shares[0].nconnect")
        #expect(field.flag == "--nconnect")
        #expect(
            (["nvmeof", "exports", 2] + ["allow_any_host"] as FieldPath).description
                == "nvmeof.exports[2].allow_any_host")
        #expect((["allow_any_host"] as FieldPath).flag == "--allow-any-host")
        #expect((["host_nqn"] as FieldPath).flag == "--hostnqn")
        #expect((["models", "dir"] as FieldPath).flag == "--models-dir")
        #expect((["cache", "dir"] as FieldPath).flag == "--dir")
        #expect((["tiers", 0, "name"] as FieldPath).flag == nil)
    }

    @Test func aUsageErrorShowsItsFieldAsTheFlag() {
        let error = CachectlError.usage(["port"], "port must be 1-65535 (NVMe-oF uses 4420): 0")
        #expect(error.code == .usage)
        #expect(error.description == "--port: port must be 1-65535 (NVMe-oF uses 4420): 0")
        #expect(error.within(["nvmeof", "connections", 1]).field?.description == "nvmeof.connections[1].port")
        #expect(CachectlError.usage(["name"], "tier name must be short").description == "tier name must be short")
    }
}
