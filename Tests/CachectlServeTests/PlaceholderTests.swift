import Testing
@testable import CachectlServe
