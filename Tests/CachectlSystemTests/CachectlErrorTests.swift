import CachectlSystem
import Glibc
import Testing

@Suite struct CachectlErrorTests {
    @Test func namesOperationPathErrnoAndHint() {
        let error = CachectlError("open", path: "/models/x.gguf", errno: EACCES)
        #expect(error.description == "open /models/x.gguf: Permission denied (EACCES); run as root, or check the permissions of the path")
    }

    @Test func sysThrowsWithSavedErrno() {
        #expect(throws: CachectlError("open", path: "/nonexistent/cachectl", errno: ENOENT)) {
            _ = try sys("open", "/nonexistent/cachectl") { open("/nonexistent/cachectl", O_RDONLY) }
        }
    }
}
