import CachectlSystem

/// The templates shipped inside the binary (embedded at build time from the
/// repository's top-level `templates/`, the one source of truth), so an
/// installed `cachectl` needs no files beside it.
public enum EmbeddedTemplates {
    public static var cachefilesdConf: Template {
        Template(String(decoding: PackageResources.cachefilesd_conf_mustache, as: UTF8.self))
    }
    public static var cachefilesdService: Template {
        Template(String(decoding: PackageResources.cachefilesd_service_mustache, as: UTF8.self))
    }
}
