# Runs at install time (install(SCRIPT)), when CMAKE_INSTALL_PREFIX is the prefix being installed
# to. deploy/ names the binary /usr/local/bin/zen; the installed copies name
# CMAKE_INSTALL_PREFIX/bin/zen. The systemd units go where systemd looks for a prefix's units
# (/usr/lib/systemd/system for the package, /usr/local/lib/systemd/system for a default install),
# installed but not enabled; all of deploy/ goes to share/doc/zen/examples.
set(binary "${CMAKE_INSTALL_PREFIX}/bin/zen")
file(REMOVE_RECURSE "${ZEN_STAGING_DIR}")
file(GLOB_RECURSE deploy_files RELATIVE "${ZEN_DEPLOY_DIR}" "${ZEN_DEPLOY_DIR}/*")
foreach(deploy_file IN LISTS deploy_files)
  file(READ "${ZEN_DEPLOY_DIR}/${deploy_file}" text)
  string(REPLACE "/usr/local/bin/zen" "${binary}" text "${text}")
  file(WRITE "${ZEN_STAGING_DIR}/${deploy_file}" "${text}")
endforeach()

file(GLOB units "${ZEN_STAGING_DIR}/systemd/*.service" "${ZEN_STAGING_DIR}/systemd/*.socket")
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE FILES ${units})
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/share/doc/zen/examples" TYPE DIRECTORY FILES "${ZEN_STAGING_DIR}/")
