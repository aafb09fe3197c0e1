/// One download in progress that other readers of the same key wait for.
final class Flight {
    var done = false
    var outcome: Result<Void, Error> = .success(())
}
