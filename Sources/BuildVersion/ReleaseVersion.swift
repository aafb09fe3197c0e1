/// The release every binary of this tree reports (`jobstored --version`, `jobstore --version`,
/// Hello's server_version), kept in the lowest module so the daemon and its clients agree.
public enum ReleaseVersion {
    public static let current = "0.1.0"
}
