import { html, type Html } from './html.js';
import type { FileKind } from './icons.js';

// The words on every page, in every language Ferry speaks. A language is a complete Messages
// object (the type makes a missing string a compile error), picked per request from `?lang=`,
// then Accept-Language, then English. Values from the message (sender, names) arrive as Html or
// strings and are escaped by the html tag like everywhere else.

export const LANGUAGES = ['en', 'de', 'fr', 'es'] as const;
export type Lang = (typeof LANGUAGES)[number];
export const DEFAULT_LANG: Lang = 'en';

export interface Messages {
  /** BCP 47 tag for Intl (dates, numbers) and the html lang attribute. */
  locale: string;
  /** The language's own name, for the language links. */
  name: string;
  languageLabel: string;

  landingTitle(sender: string): string;
  landingHeading(sender: string): Html;
  /** Title and heading when the message had no sender (the null sender of a bounce). */
  landingTitleNoSender: string;
  from: string;
  sent: string;
  subject: string;
  availableUntil: string;
  timeLeft(unit: 'day' | 'hour' | 'minute', n: number): string;
  lessThanAMinute: string;
  filesHeading(count: number, size: string): string;
  download: string;
  /** Accessible name of a file's download link. */
  downloadFile(name: string): string;
  downloadAll: string;
  downloadAllHint(size: string): string;
  size: string;
  type: string;
  kinds: Record<FileKind, string>;
  bytes(exact: string): string;
  copy: string;
  copied: string;
  copyLabel(name: string): string;
  downloadsLeft(left: number, max: number): string;
  limitReachedFile: string;
  zipUnavailableLimit: string;
  noFiles: string;
  expiryNote(when: Html): Html;
  checkNote: string;
  trust(brand: string): string;

  notFoundTitle: string;
  notFoundBody: string;
  notFoundAsk: string;
  goneTitle: string;
  goneExpired(when: Html): Html;
  goneRevoked(when: Html): Html;
  askSender(sender: Html): Html;
  askSenderUnknown: string;
  limitTitle: string;
  limitBody(max: number): string;
  unavailableTitle: string;
  unavailableBody: string;
  errorTitle: string;
  errorBody: string;
  badRequestTitle: string;
  badRequestBody: string;
  tooManyTitle: string;
  tooManyBody(seconds: number): string;
  homeTitle(brand: string): string;
  homeBody: string;
  /** A file's malware check: the line on the landing page, the page of a blocked file. */
  scan: ScanMessages;
}

export interface ScanMessages {
  /** The scanner as named in the sentences below (engine as recorded: clamav, icap). */
  engine(engine: string | null): string;
  clean(engine: string, signaturesOf: string): string;
  tooLarge: string;
  unscanned: string;
  held(engine: string): string;
  blockedRescan(engine: string): string;
  deleted: string;
  released: string;
  heldTitle: string;
  heldBody: string;
  rescanTitle: string;
  rescanBody: string;
  deletedTitle: string;
  deletedBody: string;
  askOtherWay(sender: Html): Html;
  askOtherWayUnknown: string;
}

const en: Messages = {
  locale: 'en-GB',
  name: 'English',
  languageLabel: 'Language',
  landingTitle: (sender) => `Files from ${sender}`,
  landingHeading: (sender) => html`Files from ${sender}`,
  landingTitleNoSender: 'Files sent to you',
  from: 'From',
  sent: 'Sent',
  subject: 'Subject',
  availableUntil: 'Available until',
  timeLeft: (unit, n) => `${n} ${unit}${n === 1 ? '' : 's'} left`,
  lessThanAMinute: 'less than a minute left',
  filesHeading: (count, size) => `${count === 1 ? '1 file' : `${count} files`}, ${size}`,
  download: 'Download',
  downloadFile: (name) => `Download ${name}`,
  downloadAll: 'Download all (.zip)',
  downloadAllHint: (size) => `All files in one .zip archive, ${size}`,
  size: 'Size',
  type: 'Type',
  kinds: { pdf: 'PDF document', doc: 'Document', sheet: 'Spreadsheet', slides: 'Presentation', image: 'Image', video: 'Video', audio: 'Audio', archive: 'Archive', text: 'Text', other: 'File' },
  bytes: (exact) => `${exact} bytes`,
  copy: 'Copy',
  copied: 'Copied',
  copyLabel: (name) => `Copy the SHA-256 of ${name}`,
  downloadsLeft: (left, max) => `${left} of ${max} downloads left`,
  limitReachedFile: 'Download limit reached',
  zipUnavailableLimit: 'Downloading all files at once is no longer possible because a file has reached its download limit.',
  noFiles: 'This message has no files.',
  expiryNote: (when) => html`The links work until ${when}. Download the files before then; a download that breaks off can be resumed.`,
  checkNote: 'To check that a file arrived intact, compare its SHA-256 with the one shown here.',
  trust: (brand) => `${brand} delivers files that were too large for email, on behalf of the sender. This service never asks you to sign in or for a password of your own; files the sender protected ask only for the password the sender gave you.`,
  notFoundTitle: 'Link not found',
  notFoundBody: 'There is nothing at this address. Check that the whole link was copied from the email: long links are sometimes broken across two lines.',
  notFoundAsk: 'If the link is complete, ask the sender to send the files again.',
  goneTitle: 'These files are no longer available',
  goneExpired: (when) => html`These files could be downloaded until ${when}. That time has passed and they have been removed.`,
  goneRevoked: (when) => html`These files were withdrawn before their expiry date (${when}) and can no longer be downloaded.`,
  askSender: (sender) => html`If you still need them, ask the sender, ${sender}, to send them again.`,
  askSenderUnknown: 'If you still need them, ask the sender to send them again.',
  limitTitle: 'Download limit reached',
  limitBody: (max) =>
    `These files have been downloaded as often as allowed (${max === 1 ? 'once' : `${max} times`} each), so they can no longer be downloaded from this link.`,
  unavailableTitle: 'Temporarily unavailable',
  unavailableBody: 'The file service cannot reach its storage right now. Your files are safe; please try again in a few minutes.',
  errorTitle: 'Something went wrong',
  errorBody: 'The file service could not answer this request. Please try again in a few minutes.',
  badRequestTitle: 'Request not understood',
  badRequestBody: 'The file service could not handle this request. Open the link from the email again.',
  tooManyTitle: 'Too many requests',
  tooManyBody: (s) => `Too many requests came from your network in a short time. Please wait ${s === 1 ? 'a second' : `${s} seconds`} and try again.`,
  homeTitle: (brand) => `${brand} file service`,
  homeBody: 'This server delivers files that were sent to you by email. To download them, open the link in that email.',
  scan: {
    engine: (e) => (e === 'clamav' ? 'ClamAV' : e === 'icap' ? 'the organisation’s ICAP scanner' : 'a malware scanner'),
    clean: (engine, date) => `Checked for malware by ${engine}, signatures of ${date}.`,
    tooLarge: 'Not checked for malware: the file is too large for the scanner.',
    unscanned: 'Not checked for malware: the scanner was unavailable when the file was sent.',
    held: (engine) => `Held for review: ${engine} found malware in this file. It cannot be downloaded until an administrator has checked it.`,
    blockedRescan: (engine) => `Blocked after a new check: ${engine} found malware in this file with newer signatures. It can no longer be downloaded.`,
    deleted: 'This file contained malware and was deleted by an administrator.',
    released: 'Released by an administrator after a malware finding; download it only if you trust the sender.',
    heldTitle: 'File held for review',
    heldBody: 'A malware check found malware in this file when it was sent. It cannot be downloaded until an administrator has checked it.',
    rescanTitle: 'Blocked after a new check',
    rescanBody: 'A new malware check with updated signatures found malware in this file after it was sent, so it can no longer be downloaded. The sender and the administrators have been told.',
    deletedTitle: 'File removed',
    deletedBody: 'This file contained malware and an administrator deleted it.',
    askOtherWay: (sender) => html`Ask the sender, ${sender}, for another way to get it.`,
    askOtherWayUnknown: 'Ask the sender for another way to get it.',
  },
};

const de: Messages = {
  locale: 'de-DE',
  name: 'Deutsch',
  languageLabel: 'Sprache',
  landingTitle: (sender) => `Dateien von ${sender}`,
  landingHeading: (sender) => html`Dateien von ${sender}`,
  landingTitleNoSender: 'Dateien für Sie',
  from: 'Von',
  sent: 'Gesendet',
  subject: 'Betreff',
  availableUntil: 'Verfügbar bis',
  timeLeft: (unit, n) => {
    const words = { day: ['Tag', 'Tage'], hour: ['Stunde', 'Stunden'], minute: ['Minute', 'Minuten'] }[unit];
    return `noch ${n} ${n === 1 ? words[0] : words[1]}`;
  },
  lessThanAMinute: 'noch weniger als eine Minute',
  filesHeading: (count, size) => `${count === 1 ? '1 Datei' : `${count} Dateien`}, ${size}`,
  download: 'Herunterladen',
  downloadFile: (name) => `${name} herunterladen`,
  downloadAll: 'Alle herunterladen (.zip)',
  downloadAllHint: (size) => `Alle Dateien in einem .zip-Archiv, ${size}`,
  size: 'Größe',
  type: 'Typ',
  kinds: { pdf: 'PDF-Dokument', doc: 'Dokument', sheet: 'Tabelle', slides: 'Präsentation', image: 'Bild', video: 'Video', audio: 'Audio', archive: 'Archiv', text: 'Text', other: 'Datei' },
  bytes: (exact) => `${exact} Byte`,
  copy: 'Kopieren',
  copied: 'Kopiert',
  copyLabel: (name) => `SHA-256 von ${name} kopieren`,
  downloadsLeft: (left, max) => `noch ${left} von ${max} Downloads`,
  limitReachedFile: 'Download-Limit erreicht',
  zipUnavailableLimit: 'Alle Dateien auf einmal herunterzuladen ist nicht mehr möglich, weil eine Datei ihr Download-Limit erreicht hat.',
  noFiles: 'Diese Nachricht enthält keine Dateien.',
  expiryNote: (when) =>
    html`Die Links funktionieren bis ${when}. Laden Sie die Dateien vorher herunter; ein abgebrochener Download kann fortgesetzt werden.`,
  checkNote: 'Um zu prüfen, ob eine Datei unversehrt angekommen ist, vergleichen Sie ihren SHA-256-Wert mit dem hier angezeigten.',
  trust: (brand) =>
    `${brand} stellt im Auftrag des Absenders Dateien bereit, die für eine E-Mail zu groß waren. Dieser Dienst fragt Sie nie nach einer Anmeldung oder einem eigenen Passwort; geschützte Dateien fragen nur nach dem Passwort, das Ihnen der Absender gegeben hat.`,
  notFoundTitle: 'Link nicht gefunden',
  notFoundBody:
    'Unter dieser Adresse gibt es nichts. Prüfen Sie, ob der ganze Link aus der E-Mail kopiert wurde: Lange Links werden manchmal auf zwei Zeilen umgebrochen.',
  notFoundAsk: 'Wenn der Link vollständig ist, bitten Sie den Absender, die Dateien erneut zu senden.',
  goneTitle: 'Diese Dateien sind nicht mehr verfügbar',
  goneExpired: (when) => html`Diese Dateien konnten bis ${when} heruntergeladen werden. Diese Frist ist abgelaufen, und sie wurden entfernt.`,
  goneRevoked: (when) => html`Diese Dateien wurden vor ihrem Ablaufdatum (${when}) zurückgezogen und können nicht mehr heruntergeladen werden.`,
  askSender: (sender) => html`Wenn Sie sie noch brauchen, bitten Sie den Absender, ${sender}, sie erneut zu senden.`,
  askSenderUnknown: 'Wenn Sie sie noch brauchen, bitten Sie den Absender, sie erneut zu senden.',
  limitTitle: 'Download-Limit erreicht',
  limitBody: (max) =>
    `Diese Dateien wurden so oft heruntergeladen wie erlaubt (${max === 1 ? 'einmal' : `${max}-mal`} je Datei) und können über diesen Link nicht mehr heruntergeladen werden.`,
  unavailableTitle: 'Vorübergehend nicht erreichbar',
  unavailableBody: 'Der Dateidienst erreicht seinen Speicher gerade nicht. Ihre Dateien sind sicher; bitte versuchen Sie es in ein paar Minuten erneut.',
  errorTitle: 'Etwas ist schiefgelaufen',
  errorBody: 'Der Dateidienst konnte diese Anfrage nicht beantworten. Bitte versuchen Sie es in ein paar Minuten erneut.',
  badRequestTitle: 'Anfrage nicht verstanden',
  badRequestBody: 'Der Dateidienst konnte diese Anfrage nicht bearbeiten. Öffnen Sie den Link aus der E-Mail erneut.',
  tooManyTitle: 'Zu viele Anfragen',
  tooManyBody: (s) =>
    `Aus Ihrem Netzwerk kamen in kurzer Zeit zu viele Anfragen. Bitte warten Sie ${s === 1 ? 'eine Sekunde' : `${s} Sekunden`} und versuchen Sie es dann erneut.`,
  homeTitle: (brand) => `${brand}-Dateidienst`,
  homeBody: 'Dieser Server stellt Dateien bereit, die Ihnen per E-Mail geschickt wurden. Öffnen Sie zum Herunterladen den Link in dieser E-Mail.',
  // The scanner's name stands in parentheses: German sentences would need it in other cases.
  scan: {
    engine: (e) => (e === 'clamav' ? 'ClamAV' : e === 'icap' ? 'ICAP-Scanner der Organisation' : 'Virenscanner'),
    clean: (engine, date) => `Auf Schadsoftware geprüft (${engine}, Signaturen vom ${date}).`,
    tooLarge: 'Nicht auf Schadsoftware geprüft: Die Datei ist zu groß für den Scanner.',
    unscanned: 'Nicht auf Schadsoftware geprüft: Der Scanner war beim Versand nicht erreichbar.',
    held: (engine) =>
      `Zur Prüfung zurückgehalten: Bei der Prüfung (${engine}) wurde in dieser Datei Schadsoftware gefunden. Sie kann erst heruntergeladen werden, wenn ein Administrator sie geprüft hat.`,
    blockedRescan: (engine) =>
      `Nach einer neuen Prüfung gesperrt: Mit neueren Signaturen (${engine}) wurde in dieser Datei Schadsoftware gefunden. Sie kann nicht mehr heruntergeladen werden.`,
    deleted: 'Diese Datei enthielt Schadsoftware und wurde von einem Administrator gelöscht.',
    released: 'Nach einem Schadsoftware-Fund von einem Administrator freigegeben; laden Sie sie nur herunter, wenn Sie dem Absender vertrauen.',
    heldTitle: 'Datei zur Prüfung zurückgehalten',
    heldBody: 'Beim Versand wurde in dieser Datei Schadsoftware gefunden. Sie kann erst heruntergeladen werden, wenn ein Administrator sie geprüft hat.',
    rescanTitle: 'Nach einer neuen Prüfung gesperrt',
    rescanBody:
      'Eine neue Prüfung mit aktualisierten Signaturen hat nach dem Versand Schadsoftware in dieser Datei gefunden, daher kann sie nicht mehr heruntergeladen werden. Der Absender und die Administratoren wurden informiert.',
    deletedTitle: 'Datei entfernt',
    deletedBody: 'Diese Datei enthielt Schadsoftware, und ein Administrator hat sie gelöscht.',
    askOtherWay: (sender) => html`Bitten Sie den Absender, ${sender}, Ihnen die Datei auf anderem Weg zukommen zu lassen.`,
    askOtherWayUnknown: 'Bitten Sie den Absender, Ihnen die Datei auf anderem Weg zukommen zu lassen.',
  },
};

const fr: Messages = {
  locale: 'fr-FR',
  name: 'Français',
  languageLabel: 'Langue',
  landingTitle: (sender) => `Fichiers de ${sender}`,
  landingHeading: (sender) => html`Fichiers de ${sender}`,
  landingTitleNoSender: 'Fichiers qui vous ont été envoyés',
  from: 'De',
  sent: 'Envoyé le',
  subject: 'Objet',
  availableUntil: 'Disponible jusqu’au',
  timeLeft: (unit, n) => {
    const words = { day: ['jour', 'jours'], hour: ['heure', 'heures'], minute: ['minute', 'minutes'] }[unit];
    return `encore ${n} ${n === 1 ? words[0] : words[1]}`;
  },
  lessThanAMinute: 'moins d’une minute',
  filesHeading: (count, size) => `${count === 1 ? '1 fichier' : `${count} fichiers`}, ${size}`,
  download: 'Télécharger',
  downloadFile: (name) => `Télécharger ${name}`,
  downloadAll: 'Tout télécharger (.zip)',
  downloadAllHint: (size) => `Tous les fichiers dans une archive .zip, ${size}`,
  size: 'Taille',
  type: 'Type',
  kinds: { pdf: 'Document PDF', doc: 'Document', sheet: 'Feuille de calcul', slides: 'Présentation', image: 'Image', video: 'Vidéo', audio: 'Audio', archive: 'Archive', text: 'Texte', other: 'Fichier' },
  bytes: (exact) => `${exact} octets`,
  copy: 'Copier',
  copied: 'Copié',
  copyLabel: (name) => `Copier le SHA-256 de ${name}`,
  downloadsLeft: (left, max) => `${left} téléchargement${left > 1 ? 's' : ''} restant${left > 1 ? 's' : ''} sur ${max}`,
  limitReachedFile: 'Limite de téléchargements atteinte',
  zipUnavailableLimit: 'Il n’est plus possible de tout télécharger d’un coup, car un fichier a atteint sa limite de téléchargements.',
  noFiles: 'Ce message ne contient aucun fichier.',
  expiryNote: (when) =>
    html`Les liens fonctionnent jusqu’au ${when}. Téléchargez les fichiers avant cette date ; un téléchargement interrompu peut être repris.`,
  checkNote: 'Pour vérifier qu’un fichier est arrivé intact, comparez son SHA-256 avec celui affiché ici.',
  trust: (brand) =>
    `${brand} transmet, au nom de l’expéditeur, des fichiers trop volumineux pour un e-mail. Ce service ne vous demande jamais de vous connecter ni votre propre mot de passe ; des fichiers protégés demandent seulement le mot de passe que l’expéditeur vous a donné.`,
  notFoundTitle: 'Lien introuvable',
  notFoundBody:
    'Il n’y a rien à cette adresse. Vérifiez que le lien a été copié en entier depuis l’e-mail : les liens longs sont parfois coupés sur deux lignes.',
  notFoundAsk: 'Si le lien est complet, demandez à l’expéditeur de renvoyer les fichiers.',
  goneTitle: 'Ces fichiers ne sont plus disponibles',
  goneExpired: (when) => html`Ces fichiers pouvaient être téléchargés jusqu’au ${when}. Ce délai est passé et ils ont été supprimés.`,
  goneRevoked: (when) => html`Ces fichiers ont été retirés avant leur date d’expiration (${when}) et ne peuvent plus être téléchargés.`,
  askSender: (sender) => html`Si vous en avez encore besoin, demandez à l’expéditeur, ${sender}, de vous les renvoyer.`,
  askSenderUnknown: 'Si vous en avez encore besoin, demandez à l’expéditeur de vous les renvoyer.',
  limitTitle: 'Limite de téléchargements atteinte',
  limitBody: (max) =>
    `Ces fichiers ont été téléchargés autant de fois que permis (${max === 1 ? 'une fois' : `${max} fois`} chacun) et ne peuvent plus être téléchargés depuis ce lien.`,
  unavailableTitle: 'Temporairement indisponible',
  unavailableBody: 'Le service de fichiers ne parvient pas à joindre son stockage pour le moment. Vos fichiers sont en sécurité ; réessayez dans quelques minutes.',
  errorTitle: 'Une erreur est survenue',
  errorBody: 'Le service de fichiers n’a pas pu répondre à cette demande. Réessayez dans quelques minutes.',
  badRequestTitle: 'Demande non comprise',
  badRequestBody: 'Le service de fichiers n’a pas pu traiter cette demande. Ouvrez à nouveau le lien de l’e-mail.',
  tooManyTitle: 'Trop de demandes',
  tooManyBody: (s) =>
    `Trop de demandes sont venues de votre réseau en peu de temps. Attendez ${s === 1 ? 'une seconde' : `${s} secondes`}, puis réessayez.`,
  homeTitle: (brand) => `Service de fichiers ${brand}`,
  homeBody: 'Ce serveur transmet des fichiers qui vous ont été envoyés par e-mail. Pour les télécharger, ouvrez le lien contenu dans cet e-mail.',
  scan: {
    engine: (e) => (e === 'clamav' ? 'ClamAV' : e === 'icap' ? 'scanner ICAP de l’organisation' : 'antivirus'),
    clean: (engine, date) => `Analysé contre les logiciels malveillants (${engine}, signatures du ${date}).`,
    tooLarge: 'Non analysé contre les logiciels malveillants : le fichier est trop volumineux pour l’analyseur.',
    unscanned: 'Non analysé contre les logiciels malveillants : l’analyseur était indisponible lors de l’envoi.',
    held: (engine) =>
      `Retenu pour vérification : l’analyse (${engine}) a détecté un logiciel malveillant dans ce fichier. Il ne peut pas être téléchargé tant qu’un administrateur ne l’a pas examiné.`,
    blockedRescan: (engine) =>
      `Bloqué après une nouvelle analyse : des signatures plus récentes (${engine}) ont détecté un logiciel malveillant dans ce fichier. Il ne peut plus être téléchargé.`,
    deleted: 'Ce fichier contenait un logiciel malveillant et a été supprimé par un administrateur.',
    released: 'Libéré par un administrateur après la détection d’un logiciel malveillant ; ne le téléchargez que si vous faites confiance à l’expéditeur.',
    heldTitle: 'Fichier retenu pour vérification',
    heldBody: 'Un logiciel malveillant a été détecté dans ce fichier lors de son envoi. Il ne peut pas être téléchargé tant qu’un administrateur ne l’a pas examiné.',
    rescanTitle: 'Bloqué après une nouvelle analyse',
    rescanBody:
      'Une nouvelle analyse avec des signatures à jour a détecté un logiciel malveillant dans ce fichier après son envoi ; il ne peut donc plus être téléchargé. L’expéditeur et les administrateurs ont été prévenus.',
    deletedTitle: 'Fichier supprimé',
    deletedBody: 'Ce fichier contenait un logiciel malveillant et un administrateur l’a supprimé.',
    askOtherWay: (sender) => html`Demandez à l’expéditeur, ${sender}, de vous le transmettre autrement.`,
    askOtherWayUnknown: 'Demandez à l’expéditeur de vous le transmettre autrement.',
  },
};

const es: Messages = {
  locale: 'es-ES',
  name: 'Español',
  languageLabel: 'Idioma',
  landingTitle: (sender) => `Archivos de ${sender}`,
  landingHeading: (sender) => html`Archivos de ${sender}`,
  landingTitleNoSender: 'Archivos enviados para usted',
  from: 'De',
  sent: 'Enviado',
  subject: 'Asunto',
  availableUntil: 'Disponible hasta',
  timeLeft: (unit, n) => {
    const words = { day: ['día', 'días'], hour: ['hora', 'horas'], minute: ['minuto', 'minutos'] }[unit];
    return `${n === 1 ? 'queda' : 'quedan'} ${n} ${n === 1 ? words[0] : words[1]}`;
  },
  lessThanAMinute: 'queda menos de un minuto',
  filesHeading: (count, size) => `${count === 1 ? '1 archivo' : `${count} archivos`}, ${size}`,
  download: 'Descargar',
  downloadFile: (name) => `Descargar ${name}`,
  downloadAll: 'Descargar todo (.zip)',
  downloadAllHint: (size) => `Todos los archivos en un único .zip, ${size}`,
  size: 'Tamaño',
  type: 'Tipo',
  kinds: { pdf: 'Documento PDF', doc: 'Documento', sheet: 'Hoja de cálculo', slides: 'Presentación', image: 'Imagen', video: 'Vídeo', audio: 'Audio', archive: 'Archivo comprimido', text: 'Texto', other: 'Archivo' },
  bytes: (exact) => `${exact} bytes`,
  copy: 'Copiar',
  copied: 'Copiado',
  copyLabel: (name) => `Copiar el SHA-256 de ${name}`,
  downloadsLeft: (left, max) => `${left === 1 ? 'queda' : 'quedan'} ${left} de ${max} descargas`,
  limitReachedFile: 'Límite de descargas alcanzado',
  zipUnavailableLimit: 'Ya no es posible descargar todos los archivos a la vez porque un archivo ha alcanzado su límite de descargas.',
  noFiles: 'Este mensaje no tiene archivos.',
  expiryNote: (when) =>
    html`Los enlaces funcionan hasta el ${when}. Descargue los archivos antes; una descarga interrumpida se puede reanudar.`,
  checkNote: 'Para comprobar que un archivo llegó intacto, compare su SHA-256 con el que se muestra aquí.',
  trust: (brand) =>
    `${brand} entrega, en nombre del remitente, archivos demasiado grandes para el correo electrónico. Este servicio nunca le pide iniciar sesión ni una contraseña propia; los archivos protegidos solo piden la contraseña que le dio el remitente.`,
  notFoundTitle: 'Enlace no encontrado',
  notFoundBody:
    'No hay nada en esta dirección. Compruebe que ha copiado el enlace completo del correo: los enlaces largos a veces se parten en dos líneas.',
  notFoundAsk: 'Si el enlace está completo, pida al remitente que vuelva a enviar los archivos.',
  goneTitle: 'Estos archivos ya no están disponibles',
  goneExpired: (when) => html`Estos archivos se podían descargar hasta el ${when}. Ese plazo ha pasado y se han eliminado.`,
  goneRevoked: (when) => html`Estos archivos se retiraron antes de su fecha de caducidad (${when}) y ya no se pueden descargar.`,
  askSender: (sender) => html`Si todavía los necesita, pida al remitente, ${sender}, que se los vuelva a enviar.`,
  askSenderUnknown: 'Si todavía los necesita, pida al remitente que se los vuelva a enviar.',
  limitTitle: 'Límite de descargas alcanzado',
  limitBody: (max) =>
    `Estos archivos se han descargado tantas veces como se permite (${max === 1 ? 'una vez' : `${max} veces`} cada uno) y ya no se pueden descargar desde este enlace.`,
  unavailableTitle: 'No disponible temporalmente',
  unavailableBody: 'El servicio de archivos no puede acceder a su almacenamiento en este momento. Sus archivos están a salvo; vuelva a intentarlo en unos minutos.',
  errorTitle: 'Algo salió mal',
  errorBody: 'El servicio de archivos no pudo responder a esta solicitud. Vuelva a intentarlo en unos minutos.',
  badRequestTitle: 'Solicitud no comprendida',
  badRequestBody: 'El servicio de archivos no pudo atender esta solicitud. Abra de nuevo el enlace del correo.',
  tooManyTitle: 'Demasiadas solicitudes',
  tooManyBody: (s) =>
    `Llegaron demasiadas solicitudes desde su red en poco tiempo. Espere ${s === 1 ? 'un segundo' : `${s} segundos`} y vuelva a intentarlo.`,
  homeTitle: (brand) => `Servicio de archivos ${brand}`,
  homeBody: 'Este servidor entrega archivos que le enviaron por correo electrónico. Para descargarlos, abra el enlace de ese correo.',
  scan: {
    engine: (e) => (e === 'clamav' ? 'ClamAV' : e === 'icap' ? 'escáner ICAP de la organización' : 'antivirus'),
    clean: (engine, date) => `Analizado en busca de malware (${engine}, firmas del ${date}).`,
    tooLarge: 'No analizado en busca de malware: el archivo es demasiado grande para el escáner.',
    unscanned: 'No analizado en busca de malware: el escáner no estaba disponible cuando se envió el archivo.',
    held: (engine) => `Retenido para revisión: el análisis (${engine}) encontró malware en este archivo. No se puede descargar hasta que un administrador lo haya revisado.`,
    blockedRescan: (engine) => `Bloqueado tras un nuevo análisis: firmas más recientes (${engine}) encontraron malware en este archivo. Ya no se puede descargar.`,
    deleted: 'Este archivo contenía malware y un administrador lo eliminó.',
    released: 'Liberado por un administrador tras una detección de malware; descárguelo solo si confía en el remitente.',
    heldTitle: 'Archivo retenido para revisión',
    heldBody: 'Se encontró malware en este archivo cuando se envió. No se puede descargar hasta que un administrador lo haya revisado.',
    rescanTitle: 'Bloqueado tras un nuevo análisis',
    rescanBody:
      'Un nuevo análisis con firmas actualizadas encontró malware en este archivo después de su envío, por lo que ya no se puede descargar. Se ha informado al remitente y a los administradores.',
    deletedTitle: 'Archivo eliminado',
    deletedBody: 'Este archivo contenía malware y un administrador lo eliminó.',
    askOtherWay: (sender) => html`Pida al remitente, ${sender}, que se lo haga llegar de otra forma.`,
    askOtherWayUnknown: 'Pida al remitente que se lo haga llegar de otra forma.',
  },
};

export const MESSAGES: Record<Lang, Messages> = { en, de, fr, es };

function isLang(s: string): s is Lang {
  return (LANGUAGES as readonly string[]).includes(s);
}

/**
 * `?lang=` wins when it names a language Ferry has; then the best Accept-Language match by
 * q-value (a regional tag such as de-AT matches de); then English.
 */
export function pickLanguage(query: unknown, acceptLanguage: string | undefined): Lang {
  const q = typeof query === 'string' ? query.trim().toLowerCase() : undefined;
  if (q && isLang(q)) return q;
  if (!acceptLanguage) return DEFAULT_LANG;
  const ranked = acceptLanguage
    .slice(0, 500)
    .split(',')
    .map((part, i) => {
      const [tag = '', ...params] = part.trim().split(';');
      const qp = params.map((p) => /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p)?.[1]).find(Boolean);
      const weight = qp === undefined ? 1 : Number(qp);
      return { primary: tag.trim().toLowerCase().split('-')[0] ?? '', weight: Number.isFinite(weight) ? weight : 0, i };
    })
    .filter((r) => r.weight > 0)
    .sort((a, b) => b.weight - a.weight || a.i - b.i);
  for (const r of ranked) if (isLang(r.primary)) return r.primary;
  return DEFAULT_LANG;
}

// ---- the sender's management page (/m/<token>, web/pages/manage.ts) ----
// Kept apart from Messages so that page's words live together; same rules: every language
// complete (the Record type makes a missing string a compile error), values escaped by the html tag.

export type ManageStatus = 'live' | 'expired' | 'revoked' | 'deleted';
export type ManageDone = 'link-revoked' | 'revoked' | 'expiry' | 'resent';
export type ManageError = 'out-of-bounds' | 'too-soon' | 'not-live' | 'no-copy' | 'link-revoked' | 'busy' | 'not-found' | 'confirm';

export interface ManageMessages {
  title: string;
  privateNote: string;
  subject: string;
  sent: string;
  files: string;
  filesSummary(count: number, size: string): string;
  availableUntil: string;
  state: string;
  states: Record<ManageStatus, string>;
  recipientsHeading: string;
  sharedLink: string;
  linkActive: string;
  linkRevoked(when: Html): Html;
  downloadedAt(when: Html, count: number): Html;
  notDownloaded: string;
  scannerFetches(n: number): string;
  partialFetches(n: number): string;
  resend: string;
  revokeLink: string;
  expiryHeading: string;
  daysLabel: string;
  expiryRange(minDays: number, maxDays: number, from: Html, to: Html): Html;
  capRule: string;
  capAdmin: string;
  expiryFixed: string;
  change: string;
  revokeAllHeading: string;
  revokeAllBody: string;
  revokeAllConfirm: string;
  revokeAll: string;
  closed: string;
  done: { linkRevoked(recipient: string): string; revoked: string; expiry(when: Html): Html; resent(recipient: string): string };
  errors: Record<ManageError, string>;
  refusedTitle: string;
  refusedBody: string;
}

const manageEn: ManageMessages = {
  title: 'Manage your transfer',
  privateNote: 'This page is for you, the sender. Anyone who has its address can withdraw these files, so do not forward the receipt it came in.',
  subject: 'Subject',
  sent: 'Sent',
  files: 'Files',
  filesSummary: (count, size) => `${count === 1 ? '1 file' : `${count} files`}, ${size}`,
  availableUntil: 'Available until',
  state: 'Status',
  states: { live: 'Available', expired: 'Expired', revoked: 'Withdrawn', deleted: 'Deleted' },
  recipientsHeading: 'Recipients and downloads',
  sharedLink: 'Shared link (all recipients)',
  linkActive: 'Link active',
  linkRevoked: (when) => html`Link revoked on ${when}`,
  downloadedAt: (when, count) => html`Downloaded completely on ${when}${count > 1 ? ` (${count} times)` : ''}`,
  notDownloaded: 'Not downloaded yet',
  scannerFetches: (n) => (n === 1 ? '1 fetch by a mail scanner' : `${n} fetches by mail scanners`),
  partialFetches: (n) => (n === 1 ? '1 incomplete download' : `${n} incomplete downloads`),
  resend: 'Send again',
  revokeLink: 'Revoke link',
  expiryHeading: 'Availability',
  daysLabel: 'Days after sending',
  expiryRange: (min, max, from, to) => html`You can choose ${min} to ${max} days after sending: from ${from} to ${to}.`,
  capRule: 'The longest period is set by your organisation’s rules for these recipients.',
  capAdmin: 'An administrator set this date by hand: you can shorten it, not extend it.',
  expiryFixed: 'The availability of these files cannot be changed any more.',
  change: 'Change',
  revokeAllHeading: 'Withdraw everything',
  revokeAllBody: 'Every link stops working at once and the files are deleted. This cannot be undone.',
  revokeAllConfirm: 'Yes, withdraw all links',
  revokeAll: 'Withdraw all',
  closed: 'These files are no longer available, so nothing here can be changed.',
  done: {
    linkRevoked: (r) => `The link of ${r} was revoked.`,
    revoked: 'All links were withdrawn.',
    expiry: (when) => html`The files are now available until ${when}.`,
    resent: (r) => `The message to ${r} is on its way again.`,
  },
  errors: {
    'out-of-bounds': 'That period is not allowed. Choose a number of days in the range shown.',
    'too-soon': 'This message was sent again a few minutes ago. Please wait before sending it once more.',
    'not-live': 'These files are no longer available, so this cannot be changed.',
    'no-copy': 'There is no stored copy of this message to send again.',
    'link-revoked': 'This link was revoked.',
    busy: 'The transfer is being updated right now. Please try again in a moment.',
    'not-found': 'There is no such link in this transfer.',
    confirm: 'Tick the box to confirm, then press the button again.',
  },
  refusedTitle: 'Form refused',
  refusedBody: 'This form did not come from this page. Reload the page and try again.',
};

const manageDe: ManageMessages = {
  title: 'Ihre Sendung verwalten',
  privateNote: 'Diese Seite ist nur für Sie als Absender. Wer ihre Adresse kennt, kann die Dateien zurückziehen; leiten Sie die Bestätigung, in der sie stand, daher nicht weiter.',
  subject: 'Betreff',
  sent: 'Gesendet',
  files: 'Dateien',
  filesSummary: (count, size) => `${count === 1 ? '1 Datei' : `${count} Dateien`}, ${size}`,
  availableUntil: 'Verfügbar bis',
  state: 'Status',
  states: { live: 'Verfügbar', expired: 'Abgelaufen', revoked: 'Zurückgezogen', deleted: 'Gelöscht' },
  recipientsHeading: 'Empfänger und Downloads',
  sharedLink: 'Gemeinsamer Link (alle Empfänger)',
  linkActive: 'Link aktiv',
  linkRevoked: (when) => html`Link gesperrt am ${when}`,
  downloadedAt: (when, count) => html`Vollständig heruntergeladen am ${when}${count > 1 ? ` (${count}-mal)` : ''}`,
  notDownloaded: 'Noch nicht heruntergeladen',
  scannerFetches: (n) => (n === 1 ? '1 Abruf durch einen Mail-Scanner' : `${n} Abrufe durch Mail-Scanner`),
  partialFetches: (n) => (n === 1 ? '1 unvollständiger Download' : `${n} unvollständige Downloads`),
  resend: 'Erneut senden',
  revokeLink: 'Link sperren',
  expiryHeading: 'Verfügbarkeit',
  daysLabel: 'Tage nach dem Senden',
  expiryRange: (min, max, from, to) => html`Sie können ${min} bis ${max} Tage nach dem Senden wählen: von ${from} bis ${to}.`,
  capRule: 'Die längste Dauer legen die Regeln Ihrer Organisation für diese Empfänger fest.',
  capAdmin: 'Ein Administrator hat dieses Datum von Hand gesetzt: Sie können es verkürzen, aber nicht verlängern.',
  expiryFixed: 'Die Verfügbarkeit dieser Dateien kann nicht mehr geändert werden.',
  change: 'Ändern',
  revokeAllHeading: 'Alles zurückziehen',
  revokeAllBody: 'Alle Links funktionieren sofort nicht mehr und die Dateien werden gelöscht. Das lässt sich nicht rückgängig machen.',
  revokeAllConfirm: 'Ja, alle Links zurückziehen',
  revokeAll: 'Alle zurückziehen',
  closed: 'Diese Dateien sind nicht mehr verfügbar; hier lässt sich nichts mehr ändern.',
  done: {
    linkRevoked: (r) => `Der Link von ${r} wurde gesperrt.`,
    revoked: 'Alle Links wurden zurückgezogen.',
    expiry: (when) => html`Die Dateien sind jetzt verfügbar bis ${when}.`,
    resent: (r) => `Die Nachricht an ${r} ist erneut unterwegs.`,
  },
  errors: {
    'out-of-bounds': 'Diese Dauer ist nicht erlaubt. Wählen Sie eine Zahl von Tagen im angegebenen Bereich.',
    'too-soon': 'Diese Nachricht wurde vor wenigen Minuten erneut gesendet. Bitte warten Sie, bevor Sie sie noch einmal senden.',
    'not-live': 'Diese Dateien sind nicht mehr verfügbar; das lässt sich nicht mehr ändern.',
    'no-copy': 'Von dieser Nachricht ist keine Kopie gespeichert, die erneut gesendet werden könnte.',
    'link-revoked': 'Dieser Link wurde gesperrt.',
    busy: 'Die Sendung wird gerade aktualisiert. Bitte versuchen Sie es gleich noch einmal.',
    'not-found': 'Diesen Link gibt es in dieser Sendung nicht.',
    confirm: 'Setzen Sie das Häkchen zur Bestätigung und drücken Sie die Schaltfläche erneut.',
  },
  refusedTitle: 'Formular abgelehnt',
  refusedBody: 'Dieses Formular stammt nicht von dieser Seite. Laden Sie die Seite neu und versuchen Sie es noch einmal.',
};

const manageFr: ManageMessages = {
  title: 'Gérer votre envoi',
  privateNote: 'Cette page est réservée à vous, l’expéditeur. Toute personne qui connaît son adresse peut retirer ces fichiers : ne transférez pas l’accusé de réception qui la contenait.',
  subject: 'Objet',
  sent: 'Envoyé',
  files: 'Fichiers',
  filesSummary: (count, size) => `${count === 1 ? '1 fichier' : `${count} fichiers`}, ${size}`,
  availableUntil: 'Disponible jusqu’au',
  state: 'État',
  states: { live: 'Disponible', expired: 'Expiré', revoked: 'Retiré', deleted: 'Supprimé' },
  recipientsHeading: 'Destinataires et téléchargements',
  sharedLink: 'Lien partagé (tous les destinataires)',
  linkActive: 'Lien actif',
  linkRevoked: (when) => html`Lien révoqué le ${when}`,
  downloadedAt: (when, count) => html`Téléchargé entièrement le ${when}${count > 1 ? ` (${count} fois)` : ''}`,
  notDownloaded: 'Pas encore téléchargé',
  scannerFetches: (n) => (n === 1 ? '1 accès par un analyseur de courrier' : `${n} accès par des analyseurs de courrier`),
  partialFetches: (n) => (n === 1 ? '1 téléchargement incomplet' : `${n} téléchargements incomplets`),
  resend: 'Renvoyer',
  revokeLink: 'Révoquer le lien',
  expiryHeading: 'Disponibilité',
  daysLabel: 'Jours après l’envoi',
  expiryRange: (min, max, from, to) => html`Vous pouvez choisir de ${min} à ${max} jours après l’envoi : du ${from} au ${to}.`,
  capRule: 'La durée la plus longue est fixée par les règles de votre organisation pour ces destinataires.',
  capAdmin: 'Un administrateur a fixé cette date à la main : vous pouvez la raccourcir, pas la prolonger.',
  expiryFixed: 'La disponibilité de ces fichiers ne peut plus être modifiée.',
  change: 'Modifier',
  revokeAllHeading: 'Tout retirer',
  revokeAllBody: 'Tous les liens cessent de fonctionner immédiatement et les fichiers sont supprimés. Cette action est irréversible.',
  revokeAllConfirm: 'Oui, retirer tous les liens',
  revokeAll: 'Tout retirer',
  closed: 'Ces fichiers ne sont plus disponibles ; rien ne peut plus être modifié ici.',
  done: {
    linkRevoked: (r) => `Le lien de ${r} a été révoqué.`,
    revoked: 'Tous les liens ont été retirés.',
    expiry: (when) => html`Les fichiers sont désormais disponibles jusqu’au ${when}.`,
    resent: (r) => `Le message à ${r} est renvoyé.`,
  },
  errors: {
    'out-of-bounds': 'Cette durée n’est pas autorisée. Choisissez un nombre de jours dans la plage indiquée.',
    'too-soon': 'Ce message a été renvoyé il y a quelques minutes. Veuillez patienter avant de le renvoyer.',
    'not-live': 'Ces fichiers ne sont plus disponibles ; cela ne peut plus être modifié.',
    'no-copy': 'Aucune copie de ce message n’est conservée pour le renvoyer.',
    'link-revoked': 'Ce lien a été révoqué.',
    busy: 'L’envoi est en cours de mise à jour. Veuillez réessayer dans un instant.',
    'not-found': 'Ce lien n’existe pas dans cet envoi.',
    confirm: 'Cochez la case pour confirmer, puis appuyez de nouveau sur le bouton.',
  },
  refusedTitle: 'Formulaire refusé',
  refusedBody: 'Ce formulaire ne provient pas de cette page. Rechargez la page et réessayez.',
};

const manageEs: ManageMessages = {
  title: 'Gestionar su envío',
  privateNote: 'Esta página es solo para usted, el remitente. Cualquiera que conozca su dirección puede retirar estos archivos, así que no reenvíe el acuse de recibo que la contenía.',
  subject: 'Asunto',
  sent: 'Enviado',
  files: 'Archivos',
  filesSummary: (count, size) => `${count === 1 ? '1 archivo' : `${count} archivos`}, ${size}`,
  availableUntil: 'Disponible hasta',
  state: 'Estado',
  states: { live: 'Disponible', expired: 'Caducado', revoked: 'Retirado', deleted: 'Eliminado' },
  recipientsHeading: 'Destinatarios y descargas',
  sharedLink: 'Enlace compartido (todos los destinatarios)',
  linkActive: 'Enlace activo',
  linkRevoked: (when) => html`Enlace revocado el ${when}`,
  downloadedAt: (when, count) => html`Descargado por completo el ${when}${count > 1 ? ` (${count} veces)` : ''}`,
  notDownloaded: 'Aún no descargado',
  scannerFetches: (n) => (n === 1 ? '1 acceso de un analizador de correo' : `${n} accesos de analizadores de correo`),
  partialFetches: (n) => (n === 1 ? '1 descarga incompleta' : `${n} descargas incompletas`),
  resend: 'Enviar de nuevo',
  revokeLink: 'Revocar enlace',
  expiryHeading: 'Disponibilidad',
  daysLabel: 'Días después del envío',
  expiryRange: (min, max, from, to) => html`Puede elegir de ${min} a ${max} días después del envío: del ${from} al ${to}.`,
  capRule: 'El periodo más largo lo fijan las reglas de su organización para estos destinatarios.',
  capAdmin: 'Un administrador fijó esta fecha a mano: puede acortarla, pero no ampliarla.',
  expiryFixed: 'La disponibilidad de estos archivos ya no se puede cambiar.',
  change: 'Cambiar',
  revokeAllHeading: 'Retirarlo todo',
  revokeAllBody: 'Todos los enlaces dejan de funcionar de inmediato y los archivos se eliminan. No se puede deshacer.',
  revokeAllConfirm: 'Sí, retirar todos los enlaces',
  revokeAll: 'Retirar todo',
  closed: 'Estos archivos ya no están disponibles; aquí ya no se puede cambiar nada.',
  done: {
    linkRevoked: (r) => `Se revocó el enlace de ${r}.`,
    revoked: 'Se retiraron todos los enlaces.',
    expiry: (when) => html`Los archivos están ahora disponibles hasta el ${when}.`,
    resent: (r) => `El mensaje a ${r} se está enviando de nuevo.`,
  },
  errors: {
    'out-of-bounds': 'Ese periodo no está permitido. Elija un número de días dentro del rango indicado.',
    'too-soon': 'Este mensaje se envió de nuevo hace unos minutos. Espere antes de enviarlo otra vez.',
    'not-live': 'Estos archivos ya no están disponibles; esto ya no se puede cambiar.',
    'no-copy': 'No hay ninguna copia guardada de este mensaje para enviarla de nuevo.',
    'link-revoked': 'Este enlace fue revocado.',
    busy: 'El envío se está actualizando en este momento. Vuelva a intentarlo en un instante.',
    'not-found': 'Ese enlace no existe en este envío.',
    confirm: 'Marque la casilla para confirmar y pulse de nuevo el botón.',
  },
  refusedTitle: 'Formulario rechazado',
  refusedBody: 'Este formulario no procede de esta página. Vuelva a cargar la página e inténtelo de nuevo.',
};

export const MANAGE_MESSAGES: Record<Lang, ManageMessages> = { en: manageEn, de: manageDe, fr: manageFr, es: manageEs };

// ---- the password prompt of a protected transfer (web/pages/password.ts, docs/passwords.md) ----
// Kept apart from Messages like the management page's words; same rules.

export interface PasswordMessages {
  title: string;
  /** Who protected the files: the sender as a link, or nobody named. */
  intro(sender: Html | undefined): Html;
  whereFrom: string;
  label: string;
  hint: string;
  submit: string;
  empty: string;
  wrong(left: number): string;
  lockedTitle: string;
  /** The lock of the recipient's network, or of everyone (too many wrong guesses from many networks). */
  lockedBody(until: Html, everyone: boolean): Html;
  lockedRightToo: string;
  /** Shown when the transfer has a sender to tell. */
  lockedTold: string;
  lockedAsk(sender: Html | undefined): Html;
}

const passwordEn: PasswordMessages = {
  title: 'Password required',
  intro: (sender) => (sender ? html`The sender, ${sender}, protected these files with a password.` : html`The sender protected these files with a password.`),
  whereFrom: 'The sender gives you the password separately: it is not in the email with the link. Enter it to see and download the files.',
  label: 'Password',
  hint: '20 letters and digits in groups of five. Upper or lower case, spaces and dashes do not matter.',
  submit: 'Open',
  empty: 'Enter the password.',
  wrong: (left) =>
    `That password is not right. ${left === 1 ? 'After one more wrong attempt' : `After ${left} more wrong attempts`} this link is locked for your network for a while.`,
  lockedTitle: 'Too many wrong passwords',
  lockedBody: (until, everyone) =>
    everyone
      ? html`The wrong password was entered too many times, so these files are locked until ${until}.`
      : html`The wrong password was entered too many times from your network, so these files are locked for it until ${until}.`,
  lockedRightToo: 'Until then even the right password is not accepted.',
  lockedTold: 'The sender has been told.',
  lockedAsk: (sender) => (sender ? html`If you need the files sooner, contact the sender, ${sender}.` : html`If you need the files sooner, contact the sender.`),
};

const passwordDe: PasswordMessages = {
  title: 'Passwort erforderlich',
  intro: (sender) => (sender ? html`Der Absender, ${sender}, hat diese Dateien mit einem Passwort geschützt.` : html`Der Absender hat diese Dateien mit einem Passwort geschützt.`),
  whereFrom: 'Das Passwort erhalten Sie getrennt vom Absender: Es steht nicht in der E-Mail mit dem Link. Geben Sie es ein, um die Dateien zu sehen und herunterzuladen.',
  label: 'Passwort',
  hint: '20 Buchstaben und Ziffern in Fünfergruppen. Groß- und Kleinschreibung, Leerzeichen und Bindestriche spielen keine Rolle.',
  submit: 'Öffnen',
  empty: 'Geben Sie das Passwort ein.',
  wrong: (left) =>
    `Dieses Passwort ist nicht richtig. ${left === 1 ? 'Nach einem weiteren falschen Versuch' : `Nach ${left} weiteren falschen Versuchen`} wird dieser Link für Ihr Netzwerk eine Zeit lang gesperrt.`,
  lockedTitle: 'Zu viele falsche Passwörter',
  lockedBody: (until, everyone) =>
    everyone
      ? html`Das Passwort wurde zu oft falsch eingegeben, daher sind diese Dateien bis ${until} gesperrt.`
      : html`Das Passwort wurde aus Ihrem Netzwerk zu oft falsch eingegeben, daher sind diese Dateien dafür bis ${until} gesperrt.`,
  lockedRightToo: 'Bis dahin wird auch das richtige Passwort nicht angenommen.',
  lockedTold: 'Der Absender wurde informiert.',
  lockedAsk: (sender) => (sender ? html`Wenn Sie die Dateien früher brauchen, wenden Sie sich an den Absender, ${sender}.` : html`Wenn Sie die Dateien früher brauchen, wenden Sie sich an den Absender.`),
};

const passwordFr: PasswordMessages = {
  title: 'Mot de passe requis',
  intro: (sender) => (sender ? html`L’expéditeur, ${sender}, a protégé ces fichiers par un mot de passe.` : html`L’expéditeur a protégé ces fichiers par un mot de passe.`),
  whereFrom: 'L’expéditeur vous donne le mot de passe séparément : il ne figure pas dans l’e-mail contenant le lien. Saisissez-le pour voir et télécharger les fichiers.',
  label: 'Mot de passe',
  hint: '20 lettres et chiffres par groupes de cinq. Majuscules ou minuscules, espaces et tirets sont sans importance.',
  submit: 'Ouvrir',
  empty: 'Saisissez le mot de passe.',
  wrong: (left) =>
    `Ce mot de passe n’est pas le bon. ${left === 1 ? 'Après une nouvelle erreur' : `Après ${left} nouvelles erreurs`}, ce lien sera bloqué pour votre réseau pendant un certain temps.`,
  lockedTitle: 'Trop de mots de passe erronés',
  lockedBody: (until, everyone) =>
    everyone
      ? html`Un mauvais mot de passe a été saisi trop de fois ; ces fichiers sont donc bloqués jusqu’au ${until}.`
      : html`Un mauvais mot de passe a été saisi trop de fois depuis votre réseau ; ces fichiers sont donc bloqués pour lui jusqu’au ${until}.`,
  lockedRightToo: 'D’ici là, même le bon mot de passe n’est pas accepté.',
  lockedTold: 'L’expéditeur a été prévenu.',
  lockedAsk: (sender) => (sender ? html`Si vous avez besoin des fichiers plus tôt, contactez l’expéditeur, ${sender}.` : html`Si vous avez besoin des fichiers plus tôt, contactez l’expéditeur.`),
};

const passwordEs: PasswordMessages = {
  title: 'Se necesita una contraseña',
  intro: (sender) => (sender ? html`El remitente, ${sender}, protegió estos archivos con una contraseña.` : html`El remitente protegió estos archivos con una contraseña.`),
  whereFrom: 'El remitente le da la contraseña por separado: no está en el correo con el enlace. Introdúzcala para ver y descargar los archivos.',
  label: 'Contraseña',
  hint: '20 letras y cifras en grupos de cinco. Mayúsculas o minúsculas, espacios y guiones no importan.',
  submit: 'Abrir',
  empty: 'Introduzca la contraseña.',
  wrong: (left) =>
    `Esa contraseña no es correcta. ${left === 1 ? 'Tras un intento fallido más' : `Tras ${left} intentos fallidos más`}, este enlace se bloqueará para su red durante un tiempo.`,
  lockedTitle: 'Demasiadas contraseñas incorrectas',
  lockedBody: (until, everyone) =>
    everyone
      ? html`Se introdujo una contraseña incorrecta demasiadas veces, así que estos archivos están bloqueados hasta el ${until}.`
      : html`Se introdujo una contraseña incorrecta demasiadas veces desde su red, así que estos archivos están bloqueados para ella hasta el ${until}.`,
  lockedRightToo: 'Hasta entonces no se acepta ni siquiera la contraseña correcta.',
  lockedTold: 'Se ha avisado al remitente.',
  lockedAsk: (sender) => (sender ? html`Si necesita los archivos antes, póngase en contacto con el remitente, ${sender}.` : html`Si necesita los archivos antes, póngase en contacto con el remitente.`),
};

export const PASSWORD_MESSAGES: Record<Lang, PasswordMessages> = { en: passwordEn, de: passwordDe, fr: passwordFr, es: passwordEs };
