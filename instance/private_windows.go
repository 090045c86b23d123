package instance

import "golang.org/x/sys/windows"

// protectDir gives dir an ACL for this user alone, inherited by what is
// created in it. Go's file modes do not do this on Windows: 0600 only
// clears the read-only attribute, and a new file inherits its folder's
// ACL. The folders here sit in %AppData% or %LocalAppData%, whose
// inherited ACL already admits only the user, SYSTEM and administrators,
// so when the call fails (an unusual file system, Wine) that inherited ACL
// is what remains, and the write goes on.
func protectDir(dir string) error {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil
	}
	acl, err := windows.ACLFromEntries([]windows.EXPLICIT_ACCESS{{
		AccessPermissions: windows.GENERIC_ALL,
		AccessMode:        windows.GRANT_ACCESS,
		Inheritance:       windows.SUB_CONTAINERS_AND_OBJECTS_INHERIT,
		Trustee: windows.TRUSTEE{
			TrusteeForm:  windows.TRUSTEE_IS_SID,
			TrusteeType:  windows.TRUSTEE_IS_USER,
			TrusteeValue: windows.TrusteeValueFromSID(u.User.Sid),
		},
	}}, nil)
	if err != nil {
		return nil
	}
	_ = windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, acl, nil)
	return nil
}
