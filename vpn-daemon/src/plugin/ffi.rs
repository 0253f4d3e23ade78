//! The unsafe half of the plugin support: OpenVPN's plugin ABI v3 as
//! `#[repr(C)]` types (`include/openvpn-plugin.h.in` of 2.6.14), loading a
//! shared object with `libloading`, and the calls into it. Everything here
//! runs on the plugin thread only (see `super`), one call at a time, as
//! OpenVPN's single-threaded loop does.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::path::{Path, PathBuf};
use std::ptr;

use base64::Engine as _;

/// `OPENVPN_PLUGINv3_STRUCTVER` of 2.6.
pub(super) const STRUCTVER: c_int = 5;
/// `OPENVPN_PLUGIN_VERSION`: the interface version we implement.
pub(super) const INTERFACE_VERSION: c_int = 3;
/// `OPENVPN_PLUGIN_N`: hooks 0..16; every one may be asked for.
pub(super) const SUPPORTED_MASK: c_uint = (1 << 16) - 1;
/// `SSLAPI_OPENSSL`: our TLS is OpenSSL, as Debian's openvpn.
const SSLAPI_OPENSSL: c_int = 1;

/// `struct openvpn_plugin_string_list`.
#[repr(C)]
struct StringList {
    next: *mut StringList,
    name: *mut c_char,
    value: *mut c_char,
}

/// `struct openvpn_plugin_callbacks`; the instance lives in `shim.c`.
#[repr(C)]
struct Callbacks {
    plugin_log: *const c_void,
    plugin_vlog: *const c_void,
    plugin_secure_memzero: *const c_void,
    plugin_base64_encode: *const c_void,
    plugin_base64_decode: *const c_void,
}

/// `struct openvpn_plugin_args_open_in`.
#[repr(C)]
struct OpenIn {
    type_mask: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
    callbacks: *mut Callbacks,
    ssl_api: c_int,
    ovpn_version: *const c_char,
    ovpn_version_major: c_uint,
    ovpn_version_minor: c_uint,
    ovpn_version_patch: *const c_char,
}

/// `struct openvpn_plugin_args_open_return`.
#[repr(C)]
struct OpenReturn {
    type_mask: c_int,
    handle: *mut c_void,
    return_list: *mut *mut StringList,
}

/// `struct openvpn_plugin_args_func_in`.
#[repr(C)]
struct FuncIn {
    type_: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
    handle: *mut c_void,
    per_client_context: *mut c_void,
    current_cert_depth: c_int,
    current_cert: *mut c_void,
}

/// `struct openvpn_plugin_args_func_return`.
#[repr(C)]
struct FuncReturn {
    return_list: *mut *mut StringList,
}

type OpenV1 =
    unsafe extern "C" fn(*mut c_uint, *const *const c_char, *const *const c_char) -> *mut c_void;
type OpenV2 = unsafe extern "C" fn(
    *mut c_uint,
    *const *const c_char,
    *const *const c_char,
    *mut *mut StringList,
) -> *mut c_void;
type OpenV3 = unsafe extern "C" fn(c_int, *const OpenIn, *mut OpenReturn) -> c_int;
type FuncV1 =
    unsafe extern "C" fn(*mut c_void, c_int, *const *const c_char, *const *const c_char) -> c_int;
type FuncV2 = unsafe extern "C" fn(
    *mut c_void,
    c_int,
    *const *const c_char,
    *const *const c_char,
    *mut c_void,
    *mut *mut StringList,
) -> c_int;
type FuncV3 = unsafe extern "C" fn(c_int, *const FuncIn, *mut FuncReturn) -> c_int;
type Close = unsafe extern "C" fn(*mut c_void);
type Constructor = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type Destructor = unsafe extern "C" fn(*mut c_void, *mut c_void);
type IntFn = unsafe extern "C" fn() -> c_int;

unsafe extern "C" {
    /// Defined in `shim.c`.
    static mut vpn_plugin_callbacks: Callbacks;
}

/// Why a plugin could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// dlopen failed.
    #[error("PLUGIN_INIT: could not load plugin shared object {path}: {source}")]
    Load {
        /// The file.
        path: PathBuf,
        /// dlopen's reason.
        #[source]
        source: libloading::Error,
    },
    /// A required symbol is missing.
    #[error("PLUGIN: could not find required symbol '{symbol}' in plugin shared object {path}")]
    Symbol {
        /// The file.
        path: PathBuf,
        /// Which.
        symbol: &'static str,
    },
    /// The plugin wants a newer interface.
    #[error(
        "PLUGIN_INIT: plugin needs interface version {needs}, but this version only supports version {INTERFACE_VERSION}: {path}"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// What it asked for.
        needs: c_int,
    },
    /// Its open function failed.
    #[error("PLUGIN_INIT: plugin initialization function failed: {path}")]
    OpenFailed {
        /// The file.
        path: PathBuf,
    },
    /// It asked for hooks that do not exist.
    #[error(
        "PLUGIN_INIT: plugin {path} expressed interest in unsupported plugin types: [want=0x{want:08x}, have=0x{SUPPORTED_MASK:08x}]"
    )]
    Types {
        /// The file.
        path: PathBuf,
        /// Its mask.
        want: c_uint,
    },
    /// An argument or variable holds a NUL byte.
    #[error("plugin argument or environment entry contains a NUL byte")]
    Nul,
    /// The plugin thread is gone.
    #[error("the plugin thread has stopped")]
    Stopped,
}

/// NUL-terminated `char *[]` over owned strings.
pub(super) struct CArray {
    _strings: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl CArray {
    pub(super) fn new<I: IntoIterator<Item = S>, S: Into<Vec<u8>>>(
        items: I,
    ) -> Result<Self, PluginError> {
        let strings = items
            .into_iter()
            .map(|s| CString::new(s).map_err(|_| PluginError::Nul))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ptrs: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(ptr::null());
        Ok(CArray {
            _strings: strings,
            ptrs,
        })
    }

    fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }
}

/// One loaded plugin (`struct plugin` of 2.6).
pub(super) struct Loaded {
    /// The file, for messages and as argv\[0\] of every call.
    pub(super) path: PathBuf,
    open1: Option<OpenV1>,
    open2: Option<OpenV2>,
    open3: Option<OpenV3>,
    func1: Option<FuncV1>,
    func2: Option<FuncV2>,
    func3: Option<FuncV3>,
    close: Close,
    constructor: Option<Constructor>,
    destructor: Option<Destructor>,
    /// `openvpn_plugin_select_initialization_point_v1`, or PRE_DAEMON.
    pub(super) init_point: c_int,
    /// The hooks it intercepts (all until it is opened).
    pub(super) mask: c_uint,
    /// The plugin's handle once opened.
    handle: *mut c_void,
    // Last: the symbols above point into it.
    _lib: libloading::Library,
}

/// Name → value pairs a plugin returned (`return_list`).
pub(super) type ReturnList = Vec<(String, String)>;

impl Loaded {
    /// dlopen and symbol lookup (`plugin_init_item`).
    pub(super) fn load(path: &Path) -> Result<Self, PluginError> {
        // SAFETY: loading runs the object's initialisers; choosing to load
        // this file is the administrator's `plugin` line, as for openvpn.
        // RTLD_NOW as openvpn, so a missing symbol fails here, not later.
        let lib = unsafe {
            libloading::os::unix::Library::open(
                Some(path),
                libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
            )
        }
        .map(libloading::Library::from)
        .map_err(|source| PluginError::Load {
            path: path.to_owned(),
            source,
        })?;
        macro_rules! sym {
            ($t:ty, $name:literal) => {
                // SAFETY: the symbol is looked up by the name the ABI gives
                // it and typed as the ABI declares it; the pointer is only
                // used while `lib` is alive (it is a field of the result).
                unsafe { lib.get::<$t>($name) }.ok().map(|s| *s)
            };
        }
        let close = sym!(Close, "openvpn_plugin_close_v1").ok_or(PluginError::Symbol {
            path: path.to_owned(),
            symbol: "openvpn_plugin_close_v1",
        })?;
        let open1 = sym!(OpenV1, "openvpn_plugin_open_v1");
        let open2 = sym!(OpenV2, "openvpn_plugin_open_v2");
        let open3 = sym!(OpenV3, "openvpn_plugin_open_v3");
        let func1 = sym!(FuncV1, "openvpn_plugin_func_v1");
        let func2 = sym!(FuncV2, "openvpn_plugin_func_v2");
        let func3 = sym!(FuncV3, "openvpn_plugin_func_v3");
        if open1.is_none() && open2.is_none() && open3.is_none() {
            return Err(PluginError::Symbol {
                path: path.to_owned(),
                symbol: "openvpn_plugin_open_vX",
            });
        }
        if func1.is_none() && func2.is_none() && func3.is_none() {
            return Err(PluginError::Symbol {
                path: path.to_owned(),
                symbol: "openvpn_plugin_func_vX",
            });
        }
        if let Some(min) = sym!(IntFn, "openvpn_plugin_min_version_required_v1") {
            // SAFETY: a no-argument function of the ABI.
            let needs = unsafe { min() };
            if needs > INTERFACE_VERSION {
                return Err(PluginError::Version {
                    path: path.to_owned(),
                    needs,
                });
            }
        }
        let init_point = match sym!(IntFn, "openvpn_plugin_select_initialization_point_v1") {
            // SAFETY: a no-argument function of the ABI.
            Some(f) => unsafe { f() },
            None => super::INIT_PRE_DAEMON,
        };
        Ok(Loaded {
            path: path.to_owned(),
            open1,
            open2,
            open3,
            func1,
            func2,
            func3,
            close,
            constructor: sym!(Constructor, "openvpn_plugin_client_constructor_v1"),
            destructor: sym!(Destructor, "openvpn_plugin_client_destructor_v1"),
            init_point,
            mask: SUPPORTED_MASK,
            handle: ptr::null_mut(),
            _lib: lib,
        })
    }

    pub(super) fn is_open(&self) -> bool {
        !self.handle.is_null()
    }

    /// `plugin_open_item`: v3, else v2, else v1.
    pub(super) fn open(&mut self, argv: &CArray, envp: &CArray) -> Result<(), PluginError> {
        let mut list: *mut StringList = ptr::null_mut();
        let mut mask = SUPPORTED_MASK;
        let handle = if let Some(open3) = self.open3 {
            let args = OpenIn {
                type_mask: mask as c_int,
                argv: argv.as_ptr(),
                envp: envp.as_ptr(),
                callbacks: &raw mut vpn_plugin_callbacks,
                ssl_api: SSLAPI_OPENSSL,
                ovpn_version: c"2.6.14".as_ptr(),
                ovpn_version_major: 2,
                ovpn_version_minor: 6,
                ovpn_version_patch: c"14".as_ptr(),
            };
            let mut ret = OpenReturn {
                type_mask: 0,
                handle: ptr::null_mut(),
                return_list: &mut list,
            };
            // SAFETY: `args` and `ret` are valid for the call, their
            // arrays NUL-terminated and alive until it returns; the
            // callbacks struct is a static that lives for the process.
            let status = unsafe { open3(STRUCTVER, &args, &mut ret) };
            if status == super::FUNC_SUCCESS {
                mask = ret.type_mask as c_uint;
                ret.handle
            } else {
                ptr::null_mut()
            }
        } else if let Some(open2) = self.open2 {
            // SAFETY: as above; `mask` and `list` outlive the call.
            unsafe { open2(&mut mask, argv.as_ptr(), envp.as_ptr(), &mut list) }
        } else if let Some(open1) = self.open1 {
            // SAFETY: as above.
            unsafe { open1(&mut mask, argv.as_ptr(), envp.as_ptr()) }
        } else {
            ptr::null_mut()
        };
        // Only PRE_CONFIG_PARSE plugins' "config" returns are used by 2.6,
        // and we open none that early: drop whatever came back.
        drop(take_list(list));
        self.mask = mask;
        if mask | SUPPORTED_MASK != SUPPORTED_MASK {
            self.close_handle(handle);
            return Err(PluginError::Types {
                path: self.path.clone(),
                want: mask,
            });
        }
        if handle.is_null() {
            return Err(PluginError::OpenFailed {
                path: self.path.clone(),
            });
        }
        self.handle = handle;
        Ok(())
    }

    fn close_handle(&self, handle: *mut c_void) {
        if !handle.is_null() {
            // SAFETY: `handle` came from this plugin's open function and is
            // closed once.
            unsafe { (self.close)(handle) };
        }
    }

    /// `plugin_call_item`: the status and what came back in return_list.
    pub(super) fn call(
        &self,
        kind: c_int,
        argv: &CArray,
        envp: &CArray,
        per_client: *mut c_void,
        cert: Option<(c_int, *mut c_void)>,
    ) -> (c_int, ReturnList) {
        let mut list: *mut StringList = ptr::null_mut();
        let status = if let Some(func3) = self.func3 {
            let args = FuncIn {
                type_: kind,
                argv: argv.as_ptr(),
                envp: envp.as_ptr(),
                handle: self.handle,
                per_client_context: per_client,
                // 2.6: the depth only with a certificate, else -1.
                current_cert_depth: cert.map_or(-1, |c| c.0),
                current_cert: cert.map_or(ptr::null_mut(), |c| c.1),
            };
            let mut ret = FuncReturn {
                return_list: &mut list,
            };
            // SAFETY: the handle is open; `args`, `ret` and the arrays they
            // point to are valid for the call; the certificate (if any) is
            // owned by the request being served and outlives the call.
            unsafe { func3(STRUCTVER, &args, &mut ret) }
        } else if let Some(func2) = self.func2 {
            // SAFETY: as above.
            unsafe {
                func2(
                    self.handle,
                    kind,
                    argv.as_ptr(),
                    envp.as_ptr(),
                    per_client,
                    &mut list,
                )
            }
        } else if let Some(func1) = self.func1 {
            // SAFETY: as above.
            unsafe { func1(self.handle, kind, argv.as_ptr(), envp.as_ptr()) }
        } else {
            super::FUNC_SUCCESS
        };
        (status, take_list(list))
    }

    /// `openvpn_plugin_client_constructor_v1`, if it has one.
    pub(super) fn construct(&self) -> *mut c_void {
        match (self.constructor, self.is_open()) {
            // SAFETY: the handle is open.
            (Some(c), true) => unsafe { c(self.handle) },
            _ => ptr::null_mut(),
        }
    }

    /// `openvpn_plugin_client_destructor_v1` of a context it constructed.
    pub(super) fn destruct(&self, ctx: *mut c_void) {
        if let (Some(d), false) = (self.destructor, ctx.is_null()) {
            // SAFETY: `ctx` came from this plugin's constructor and is
            // destroyed once.
            unsafe { d(self.handle, ctx) }
        }
    }
}

impl Drop for Loaded {
    /// `plugin_close_item`: close, then dlclose (the library field drops
    /// after this).
    fn drop(&mut self) {
        let h = std::mem::replace(&mut self.handle, ptr::null_mut());
        self.close_handle(h);
    }
}

/// Takes ownership of a plugin's `return_list` (malloc'd by the plugin, as
/// 2.6 assumes: it frees each name, value and node with free()).
fn take_list(mut l: *mut StringList) -> ReturnList {
    let mut out = Vec::new();
    // Bounded: a list longer than this is not a list a plugin meant.
    let mut left = 4096;
    while !l.is_null() && left > 0 {
        left -= 1;
        // SAFETY: a non-null node the plugin built; its strings are
        // NUL-terminated or null. Each piece is freed once.
        unsafe {
            let node = &*l;
            let s = |p: *mut c_char| {
                if p.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(p).to_string_lossy().into_owned()
                }
            };
            out.push((s(node.name), s(node.value)));
            let next = node.next;
            libc::free(node.name.cast());
            if !node.value.is_null() {
                let len = libc::strlen(node.value);
                ptr::write_bytes(node.value, 0, len);
            }
            libc::free(node.value.cast());
            libc::free(l.cast());
            l = next;
        }
    }
    out
}

/// `plugin_log`/`plugin_vlog` end here with the formatted line.
#[unsafe(no_mangle)]
extern "C" fn vpn_plugin_log_line(flags: c_int, name: *const c_char, line: *const c_char) {
    if name.is_null() || line.is_null() {
        return;
    }
    // SAFETY: both are NUL-terminated strings (the shim's buffer and the
    // plugin's name) valid for this call.
    let (name, line) = unsafe { (CStr::from_ptr(name), CStr::from_ptr(line)) };
    super::log_line(flags, &name.to_string_lossy(), &line.to_string_lossy());
}

/// `plugin_secure_memzero`.
#[unsafe(no_mangle)]
extern "C" fn vpn_plugin_secure_memzero(data: *mut c_void, len: usize) {
    if data.is_null() {
        return;
    }
    // SAFETY: the plugin passes a buffer of `len` writable bytes.
    let bytes = unsafe { std::slice::from_raw_parts_mut(data.cast::<u8>(), len) };
    zeroize::Zeroize::zeroize(bytes);
}

/// `plugin_base64_encode`: a malloc'd NUL-terminated string in `*out`, its
/// length returned; -1 on error (openvpn_base64_encode).
#[unsafe(no_mangle)]
extern "C" fn vpn_plugin_base64_encode(
    data: *const c_void,
    size: c_int,
    out: *mut *mut c_char,
) -> c_int {
    if data.is_null() || out.is_null() || size < 0 {
        return -1;
    }
    // SAFETY: the plugin passes `size` readable bytes.
    let src = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) };
    let text = base64::engine::general_purpose::STANDARD.encode(src);
    let Ok(len) = c_int::try_from(text.len()) else {
        return -1;
    };
    // SAFETY: malloc of len+1 bytes; the plugin frees it with free(), as
    // with openvpn's own.
    unsafe {
        let p = libc::malloc(text.len() + 1).cast::<u8>();
        if p.is_null() {
            return -1;
        }
        ptr::copy_nonoverlapping(text.as_ptr(), p, text.len());
        *p.add(text.len()) = 0;
        *out = p.cast();
    }
    len
}

/// `plugin_base64_decode`: at most `size` bytes into `data`; the length,
/// or -1 for bad input or too small a buffer.
#[unsafe(no_mangle)]
extern "C" fn vpn_plugin_base64_decode(s: *const c_char, data: *mut c_void, size: c_int) -> c_int {
    if s.is_null() || data.is_null() || size < 0 {
        return -1;
    }
    // SAFETY: a NUL-terminated string from the plugin.
    let text = unsafe { CStr::from_ptr(s) }.to_bytes();
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text) else {
        return -1;
    };
    if bytes.len() > size as usize {
        return -1;
    }
    // SAFETY: `data` has room for `size` >= bytes.len() bytes.
    unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), data.cast::<u8>(), bytes.len()) };
    bytes.len() as c_int
}
