//! All of procscript's script surface as one Rhai package.

use rhai::def_package;

use crate::builtins::format::FormatPackage;
use crate::builtins::BuiltinsPackage;
use crate::command::CommandPackage;
use crate::ipc::IpcPackage;
use crate::manager::ManagerPackage;
use crate::net::package::NetPackage;
use crate::pool::package::PoolPackage;
use crate::process::package::ProcessPackage;

def_package! {
    /// Everything procscript adds to Rhai: processes ([`ProcessPackage`]), sockets
    /// ([`NetPackage`]), programs ([`CommandPackage`]), pipes, queues, locks and shared values
    /// ([`IpcPackage`]), pools ([`PoolPackage`]), managers ([`ManagerPackage`]) and Python's
    /// builtins ([`BuiltinsPackage`]), with the `spawn` and `with` syntax.
    ///
    /// Registering it into a plain [`rhai::Engine`] gives a script the whole surface:
    ///
    /// ```
    /// use procscript::rhai::packages::Package;
    ///
    /// let mut engine = procscript::rhai::Engine::new();
    /// procscript::ProcscriptPackage::new().register_into_engine(&mut engine);
    /// let code: i64 = engine
    ///     .eval(
    ///         r#"
    ///         let lock = Lock();
    ///         let p = spawn { with lock { exit(7) } };
    ///         p.join()
    ///         "#,
    ///     )
    ///     .unwrap();
    /// assert_eq!(code, 7);
    /// procscript::finish();
    /// ```
    ///
    /// [`crate::Runtime`] adds the rest of what the `procscript` binary does: whole-line
    /// `print`, Ctrl-C and SIGTERM between operations, limits, and the end-of-script policy.
    pub ProcscriptPackage(lib):
        ProcessPackage,
        NetPackage,
        CommandPackage,
        IpcPackage,
        PoolPackage,
        ManagerPackage,
        FormatPackage,
        // Last, so that its `to_string` of blobs and `()` comes before the others'.
        BuiltinsPackage
    {}
}
